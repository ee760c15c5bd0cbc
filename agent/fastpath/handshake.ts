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
    transport?: Transport;
    clock?: Clock;
  },
): Promise<Handshake> {
  const transport = options.transport ?? tlsTransport;
  checkHostName(options.peer);
  const conn = await transport.dial(address, {
    serverName: keyTlsName(options.key),
    caPem: options.caPem,
  });
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
 * Runs the acceptor's side on an accepted TLS connection; returns the peer's name and the
 * handshake. A ticket that is not there yet is waited for up to `ticketWaitMs` (the proxy's
 * message to us and its message to the dialer travel on different links).
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
): Promise<{ peer: string; handshake: Handshake }> {
  const clock = options.clock ?? systemClock;
  const hs = new Handshake(conn, options.timeoutMs, { clock });
  const hello = Handshake.json(await hs.expect(MessageType.HELLO));
  if (hello.role !== "peer") {
    throw new ProtocolError("Cannot accept fast path: HELLO without role peer");
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
