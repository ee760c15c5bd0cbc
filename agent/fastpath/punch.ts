/**
 * A hole punch: a fast path between two hosts that both sit behind NATs (or firewalls that
 * drop inbound connections), by TCP simultaneous open. The proxy tells both hosts, at the same
 * moment, each other's outside address and the local port to connect from; each connects from
 * that port to the other's. The first SYN out of each side opens its NAT for answers from the
 * other's address, so once both have sent one, a SYN gets through and the two connects become
 * one TCP connection. TLS then runs over it with fixed roles (the proxy says which side is the
 * TLS server), and the usual fast-path handshake (HELLO with the ticket) follows.
 *
 *     proxy: peer-punch {address: B's outside ip:port, localPort: pa, role}  ──> A
 *            peer-punch {address: A's outside ip:port, localPort: pb, role}  ──> B
 *     A: connect(from pa, to B)  ─SYN─> A's NAT opens ─> B's NAT drops (no mapping yet) ...
 *     B: connect(from pb, to A)  ─SYN─> B's NAT opens ─> A's NAT lets it in ─> A answers
 *     both: one TCP connection ─> TLS (node:tls: Deno cannot start TLS as a server on a
 *           connected socket) ─> HELLO {ticket} / WELCOME ─> Link
 *
 * A NAT that gives each destination another outside port (nftables `masquerade random`,
 * "symmetric" NATs) defeats this: the other side aims at a port that is not the one opened.
 * Deno's own `Deno.connect` cannot choose its local port, so `node:net` does the connect.
 *
 * @module
 */

import * as net from "node:net";
import * as tls from "node:tls";
import { type Address, formatAddress } from "../config/types.ts";
import type { NetConn } from "../link/transport.ts";
import { nodeSocketConn } from "../link/node_tls_conn.ts";

/** Pause between two connects after a refusal (a NAT that answers with RST, not silence). */
export const PUNCH_RETRY_MS = 25;

/** The punch found no way through in time. */
export class PunchFailed extends Error {
  override name = "PunchFailed";
}

/** What a punch needs. */
export interface PunchOptions {
  /** The other host's outside address (as the proxy sees its star link come from). */
  remote: Address;
  /** Our local port: the other side aims at it (a port-keeping NAT maps it to itself). */
  localPort: number;
  /** Give up after this long. */
  timeoutMs: number;
  /** Pause after a refused connect before the next (default {@linkcode PUNCH_RETRY_MS}). */
  retryMs?: number;
  signal?: AbortSignal;
}

/**
 * Connects from `localPort` to `remote` until a connection stands (simultaneous open with
 * the other side doing the same) or `timeoutMs` passed; retries after refusals.
 *
 * @throws {PunchFailed} naming what was seen (refusals, silence, a port in use).
 */
export async function punchTcp(options: PunchOptions): Promise<net.Socket> {
  const deadline = Date.now() + options.timeoutMs;
  const seen = new Map<string, number>();
  const localAddress = options.remote.hostname.includes(":") ? "::" : "0.0.0.0";
  while (Date.now() < deadline && !options.signal?.aborted) {
    const left = deadline - Date.now();
    try {
      return await connectOnce(options, localAddress, left);
    } catch (e) {
      const code = (e as { code?: string }).code ?? (e as Error).message;
      seen.set(code, (seen.get(code) ?? 0) + 1);
      if (code === "EADDRINUSE" && (seen.get(code) ?? 0) > 3) break;
      if (code !== "ETIMEDOUT") {
        await new Promise((r) => setTimeout(r, options.retryMs ?? PUNCH_RETRY_MS));
      }
    }
  }
  const what = [...seen].map(([k, n]) => `${k} x${n}`).join(", ") || "no answer";
  throw new PunchFailed(
    `Cannot punch a hole to ${formatAddress(options.remote)} from port ${options.localPort}: ` +
      `no connection within ${options.timeoutMs} ms (${what})`,
  );
}

/** One connect attempt, bounded by `ms`. */
function connectOnce(options: PunchOptions, localAddress: string, ms: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({
      host: options.remote.hostname,
      port: options.remote.port,
      localAddress,
      localPort: options.localPort,
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(Object.assign(new Error("timed out"), { code: "ETIMEDOUT" }));
    }, ms);
    const abort = () => {
      socket.destroy();
      clearTimeout(timer);
      reject(Object.assign(new Error("aborted"), { code: "ABORTED" }));
    };
    options.signal?.addEventListener("abort", abort, { once: true });
    socket.once("connect", () => {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", abort);
      socket.setNoDelay(true);
      resolve(socket);
    });
    socket.once("error", (e) => {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", abort);
      socket.destroy();
      reject(e);
    });
  });
}

/** The TLS side this host plays on a punched connection. */
export type PunchRole = "tls-server" | "tls-client";

/** TLS on a punched socket, as this host's role says; resolves with a stream once it is up. */
export function punchedTls(
  socket: net.Socket,
  options: {
    role: PunchRole;
    remote: Address;
    /** tls-server: our certificate and key. */
    certPem: string;
    keyPem: string;
    /** tls-client: the name the other's certificate must carry, and the CA that issued it. */
    serverName: string;
    caPem: string;
    timeoutMs: number;
  },
): Promise<NetConn> {
  return new Promise((resolve, reject) => {
    let sock: tls.TLSSocket;
    const timer = setTimeout(() => {
      sock.destroy();
      reject(
        new PunchFailed(`Cannot finish TLS over the punched connection in ${options.timeoutMs} ms`),
      );
    }, options.timeoutMs);
    const up = () => {
      clearTimeout(timer);
      resolve(nodeSocketConn(sock, options.remote));
    };
    if (options.role === "tls-server") {
      sock = new tls.TLSSocket(socket, {
        isServer: true,
        cert: options.certPem,
        key: options.keyPem,
        minVersion: "TLSv1.3",
      });
      sock.once("secure", up);
    } else {
      sock = tls.connect({
        socket,
        servername: options.serverName,
        ca: [options.caPem],
        minVersion: "TLSv1.3",
        rejectUnauthorized: true,
      });
      sock.once("secureConnect", () => {
        if (!sock.authorized) {
          clearTimeout(timer);
          sock.destroy();
          reject(new PunchFailed(`Cannot trust the punched peer: ${sock.authorizationError}`));
          return;
        }
        up();
      });
    }
    sock.once("error", (e) => {
      clearTimeout(timer);
      sock.destroy();
      reject(e);
    });
  });
}
