/**
 * The two sides of opening a fast-path link between hosts.
 *
 *     dialer                                  acceptor (listens with its CA-issued certificate)
 *     TCP + TCP_NODELAY, TLS verifying the name of the peer's key (the key the proxy says it
 *     joined with, `<hex>.<hex>.key.vnet`) against the proxy's CA
 *     preamble + HELLO {role: peer, name, ticket}  ->
 *                                             ticket must be expected, unexpired, for that name
 *                                          <- preamble + WELCOME {name}   or GOODBYE {reason}
 *
 * The TLS certificate proves the acceptor's identity to the dialer; the one-time ticket, which
 * only the proxy and the two hosts know, proves the dialer's identity to the acceptor.
 *
 * The proxy checks that a host can be reached on its fast-path address the same way, as a
 * dialer with no ticket (proxy/reachability.ts):
 *
 *     proxy: TLS verifying the host key's name   preamble + HELLO {role: probe}  ->
 *                                             <- preamble + WELCOME {}; the acceptor closes
 *
 * The certificate is what proves the host is there; the WELCOME carries nothing, so a stranger
 * who probes learns no more than the TLS handshake already showed. A host times a peer's
 * round trip the same way when the proxy asks (probe-peer, peer_probe.ts): the HELLO -> WELCOME
 * exchange, after TLS is up, is one round trip of the path between them.
 *
 * @module
 */

import { type Address, formatAddress } from "../config/types.ts";
import { checkHostName, keyTlsName } from "../join/host_key.ts";
import { field, Handshake } from "../link/handshake.ts";
import { type Clock, systemClock } from "../clock.ts";
import { type Conn, tlsTransport, type Transport } from "../link/transport.ts";
import { MessageType, ProtocolError } from "../link/wire.ts";
import type { TicketBook } from "./tickets.ts";

/** The peer refused our ticket, or our certificate check failed. */
export class PeerRefused extends Error {
  override name = "PeerRefused";
}

/** Dials `peer` at `address` and runs the dialer's side; returns the established handshake. */
export async function dialPeer(
  address: Address,
  options: {
    self: string;
    peer: string;
    /** The peer's key as the proxy says it: its certificate must carry this key's name. */
    key: string;
    ticket: string;
    caPem: string;
    timeoutMs: number;
    /** Bound on connecting (TCP and TLS); the transport's default when absent. */
    dialTimeoutMs?: number;
    transport?: Transport;
    clock?: Clock;
  },
): Promise<Handshake> {
  const transport = options.transport ?? tlsTransport;
  checkHostName(options.peer);
  const conn = await transport.dial(address, {
    serverName: keyTlsName(options.key),
    caPem: options.caPem,
    timeoutMs: options.dialTimeoutMs,
  });
  return await helloPeer(conn, address, options);
}

/**
 * The dialer's side of the handshake on a connection already open and TLS-verified (a dial,
 * or a hole punch): HELLO with the ticket, then WELCOME from `peer` or a refusal. Closes
 * `conn` when it fails.
 */
export async function helloPeer(
  conn: Conn,
  address: Address,
  options: { self: string; peer: string; ticket: string; timeoutMs: number; clock?: Clock },
): Promise<Handshake> {
  try {
    const hs = new Handshake(conn, options.timeoutMs, { clock: options.clock });
    await hs.start(MessageType.HELLO, { role: "peer", name: options.self, ticket: options.ticket });
    const answer = await hs.expect(MessageType.WELCOME, MessageType.GOODBYE);
    const body = Handshake.json(answer);
    if (answer.type === MessageType.GOODBYE) {
      throw new PeerRefused(
        `Cannot open a fast path to ${options.peer} at ${formatAddress(address)}: refused: ${
          String(body.reason ?? "no reason").slice(0, 200)
        }`,
      );
    }
    if (body.name !== options.peer) {
      throw new ProtocolError(
        `Cannot open a fast path: ${formatAddress(address)} is not ${options.peer}`,
      );
    }
    return hs;
  } catch (e) {
    try {
      conn.close();
    } catch { /* closed */ }
    throw e;
  }
}

/**
 * Checks that the host with key `key` accepts fast paths at `address`: TLS verifying its key's
 * name against `caPem`, then HELLO {role: probe} answered by WELCOME. Rejects with why not
 * (a `DialTimeout` from the transport when nothing answered). Used by the proxy.
 */
export async function probePeer(
  address: Address,
  options: { key: string; caPem: string; timeoutMs: number; transport?: Transport; clock?: Clock },
): Promise<void> {
  await probeRtt(address, options);
}

/**
 * {@linkcode probePeer}, timed: resolves with the milliseconds from sending HELLO {role: probe}
 * to receiving WELCOME, on the clock's monotonic time. TCP and TLS are up before the clock
 * starts (the transport's dial finishes the TLS handshake), so this is one round trip of the
 * path, not the three or so of connecting. A host measures its peers' RTT with it when the
 * proxy asks (peer_probe.ts).
 */
export async function probeRtt(
  address: Address,
  options: { key: string; caPem: string; timeoutMs: number; transport?: Transport; clock?: Clock },
): Promise<number> {
  const transport = options.transport ?? tlsTransport;
  const clock = options.clock ?? systemClock;
  const conn = await transport.dial(address, {
    serverName: keyTlsName(options.key),
    caPem: options.caPem,
    timeoutMs: options.timeoutMs,
  });
  try {
    const hs = new Handshake(conn, options.timeoutMs, { clock });
    const sent = clock.monotonic();
    await hs.start(MessageType.HELLO, { role: "probe" });
    await hs.expect(MessageType.WELCOME);
    return clock.monotonic() - sent;
  } finally {
    try {
      conn.close();
    } catch { /* closed */ }
  }
}

/**
 * Runs the acceptor's side on an accepted TLS connection; returns the peer's name and the
 * handshake, or `probe` when it was a probe (the proxy checking reachability, or a peer timing
 * a round trip; answered and done). A ticket that is not there yet is waited for up to
 * `ticketWaitMs` (the proxy's message to us and its message to the dialer travel on different
 * links).
 *
 * @throws {ProtocolError} (after sending GOODBYE) for a bad, replayed or foreign ticket.
 */
export async function acceptPeer(
  conn: Conn,
  options: {
    self: string;
    book: TicketBook;
    timeoutMs: number;
    ticketWaitMs: number;
    clock?: Clock;
  },
): Promise<{ peer: string; handshake: Handshake } | { probe: true }> {
  const clock = options.clock ?? systemClock;
  const hs = new Handshake(conn, options.timeoutMs, { clock });
  const hello = Handshake.json(await hs.expect(MessageType.HELLO));
  if (hello.role === "probe") {
    // The proxy checking that we can be reached here, or a peer the proxy asked to time a
    // round trip to us: the TLS handshake was the answer. Anyone who can reach the listener
    // may ask; they learn only that it answers (which TLS showed), get no ticket, no link.
    await hs.start(MessageType.WELCOME, {});
    return { probe: true };
  }
  if (hello.role !== "peer") {
    throw new ProtocolError("Cannot accept fast path: HELLO without role peer or probe");
  }
  let peer: string;
  try {
    peer = checkHostName(field(hello, "name", 63));
  } catch (e) {
    throw new ProtocolError(`Cannot accept fast path: ${(e as Error).message}`);
  }
  const ticket = field(hello, "ticket", 128);
  const until = clock.monotonic() + options.ticketWaitMs;
  while (!options.book.has(ticket, clock.now()) && clock.monotonic() < until) {
    await clock.sleep(20);
  }
  const refusal = options.book.consume(ticket, peer, clock.now());
  if (refusal !== null) {
    const reason = `ticket ${refusal}: ask the proxy for a new fast path`;
    await hs.start(MessageType.GOODBYE, { reason }).catch(() => {});
    throw new ProtocolError(`Cannot accept fast path from ${peer}: ${reason}`);
  }
  await hs.start(MessageType.WELCOME, { name: options.self });
  return { peer, handshake: hs };
}
