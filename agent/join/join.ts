/**
 * The host's side of joining the proxy: TCP with TCP_NODELAY, TLS trusting only the proxy's
 * CA (learned by discovery and pinned by the token's hash), then HELLO / challenge / AUTH /
 * WELCOME. The join secret never crosses the wire: the host proves it with an HMAC over the
 * proxy's fresh challenge, its name and its public key.
 *
 * @module
 */

import { type Clock, systemClock } from "../clock.ts";
import { type Address, formatAddress } from "../config/types.ts";
import { field, Handshake } from "../link/handshake.ts";
import { CertificateRejected, type Conn, tlsTransport, type Transport } from "../link/transport.ts";
import { MessageType } from "../link/wire.ts";
import { joinProof } from "./proof.ts";
import type { JoinToken } from "./token.ts";

/** Hostname the proxy's certificate is issued for; hosts verify it, whatever address they dial. */
export const PROXY_TLS_NAME = "proxy.vnet";

/** The proxy refused this host; retrying with the same settings will not help. */
export class JoinRefused extends Error {
  override name = "JoinRefused";
}

/** What the host announces in its HELLO. */
export interface HostHello {
  name: string;
  /** The host's device takes superframes. */
  offload: boolean;
  /** VMs this host can hold (`--vm-slots`), for the proxy's placement; absent: not said. */
  vmSlots?: number | null;
}

/** What the proxy hands an admitted host. */
export interface Welcome {
  /** The host's TLS certificate, issued by the proxy's CA for its public key. */
  certificatePem: string;
  /** Settings the proxy wants hosts to use (e.g. `updateIntervalMs`). */
  settings: Record<string, unknown>;
  /** This host's rejoin secret (base64url), to come back without the join token. */
  rejoin: string | null;
}

/**
 * Connects to the proxy and runs the join handshake; returns the handshake (its conn and
 * reader become the uplink) and the WELCOME.
 *
 * @throws {JoinRefused} when the proxy refuses the token or the name.
 */
export async function joinProxy(
  address: Address,
  options: {
    token: JoinToken;
    caPem: string;
    hello: HostHello;
    spkiB64: string;
    timeoutMs: number;
    /** Connect and TLS, waiting in the proxy's queue included (default: the transport's). */
    dialTimeoutMs?: number;
    /** This host's rejoin secret from an earlier WELCOME, proven instead of the token's. */
    rejoinSecret?: Uint8Array | null;
    transport?: Transport;
    clock?: Clock;
  },
): Promise<{ handshake: Handshake; welcome: Welcome }> {
  const rejoining = options.rejoinSecret != null;
  const transport = options.transport ?? tlsTransport;
  let conn: Conn | null = null;
  try {
    conn = await transport.dial(address, {
      serverName: PROXY_TLS_NAME,
      caPem: options.caPem,
      timeoutMs: options.dialTimeoutMs,
    });
    const hs = new Handshake(conn, options.timeoutMs, { clock: options.clock ?? systemClock });
    await hs.start(MessageType.HELLO, {
      role: "host",
      name: options.hello.name,
      tokenId: options.token.id,
      features: { offload: options.hello.offload, vmSlots: options.hello.vmSlots ?? null },
      rejoin: rejoining,
    });
    const hello = await hs.expect(MessageType.HELLO, MessageType.GOODBYE);
    if (hello.type === MessageType.GOODBYE) {
      throw refused(address, Handshake.json(hello), rejoining);
    }
    const challenge = field(Handshake.json(hello), "challenge", 128);
    const proof = joinProof(
      options.rejoinSecret ?? options.token.secret,
      challenge,
      options.hello.name,
      options.spkiB64,
    );
    await hs.send(MessageType.AUTH, { proof, publicKey: options.spkiB64 });
    const w = await hs.expect(MessageType.WELCOME, MessageType.GOODBYE);
    if (w.type === MessageType.GOODBYE) throw refused(address, Handshake.json(w), rejoining);
    const welcome = Handshake.json(w);
    const settings = welcome.settings;
    return {
      handshake: hs,
      welcome: {
        certificatePem: field(welcome, "certificate", 16 * 1024),
        settings: typeof settings === "object" && settings !== null
          ? settings as Record<string, unknown>
          : {},
        rejoin: typeof welcome.rejoin === "string" && welcome.rejoin.length <= 64
          ? welcome.rejoin
          : null,
      },
    };
  } catch (e) {
    try {
      conn?.close();
    } catch { /* already closed */ }
    if (e instanceof CertificateRejected) {
      throw new JoinRefused(
        `Cannot join ${formatAddress(address)}: its TLS certificate is not issued by the CA the ` +
          `token pins (${e.message}); the proxy's state was replaced or someone is in the middle`,
      );
    }
    throw e;
  }
}

function refused(address: Address, goodbye: Record<string, unknown>, rejoining: boolean): Error {
  const reason = typeof goodbye.reason === "string" ? goodbye.reason.slice(0, 400) : "no reason";
  const message = `Cannot join ${formatAddress(address)}: the proxy refused: ${reason}`;
  if (goodbye.code === "name-taken") return new NameTaken(message);
  if (goodbye.code === "revoked") return new JoinRefused(message);
  return rejoining ? new RejoinRefused(message) : new JoinRefused(message);
}

/**
 * The proxy knows this host's name under another key. Not fatal: the operator may free the
 * name (`agent hosts revoke NAME`), so the host keeps trying with backoff.
 */
export class NameTaken extends Error {
  override name = "NameTaken";
}

/** The proxy no longer knows this host's rejoin credential: join again with the token. */
export class RejoinRefused extends Error {
  override name = "RejoinRefused";
}
