/**
 * `node:tls` sockets as a {@linkcode NetConn}, for the two streams Deno's own TLS cannot make:
 * the unverified dial of CA discovery (the host does not know the CA yet and checks what it
 * receives against the hash in its join token; Deno cannot skip verification per
 * connection), and the hole-punched fast paths (agent/fastpath/punch.ts), whose
 * simultaneous-open sockets only node:net can make.
 *
 *     socket "data" ──> chunks (bounded by pausing the socket) ──> read(p)
 *     write(p) ──> socket.write, resolved when flushed to the kernel
 *     close() | peer gone | socket error | failed write ──> over: pending writes fail, reads end
 *
 * @module
 */

import { once } from "node:events";
import * as net from "node:net";
import * as tls from "node:tls";
import type { Address } from "../config/types.ts";
import type { NetConn } from "./transport.ts";
import { withTimeout } from "./with_timeout.ts";

/** Unread bytes above which the socket is paused until the reader catches up. */
const HIGH_WATER = 256 * 1024;

/**
 * Opens an unverified TLS connection to `address`, sending `serverName` as SNI; resolves once
 * the TLS handshake is done. The TCP connect and the TLS handshake each get `timeoutMs`
 * (then fail with `timedOut()`), as Deno's dial does (transport.ts): a peer slow to accept
 * has already done its side of a handshake that a shared bound would throw away.
 */
export async function nodeTlsConn(
  address: Address,
  serverName: string,
  timeoutMs: number,
  timedOut: () => Error,
): Promise<NetConn> {
  const tcp = net.connect({ host: address.hostname, port: address.port });
  tcp.setNoDelay(true);
  await withTimeout(once(tcp, "connect"), timeoutMs, () => (tcp.destroy(), timedOut()));
  const socket = tls.connect({ socket: tcp, servername: serverName, rejectUnauthorized: false });
  const conn = nodeSocketConn(socket, { hostname: address.hostname, port: address.port });
  await withTimeout(once(socket, "secureConnect"), timeoutMs, () => (socket.destroy(), timedOut()));
  return conn;
}

/**
 * A `node:tls` socket as a {@linkcode NetConn}: data events queue chunks (the socket pauses
 * above {@linkcode HIGH_WATER} unread bytes), reads take from the queue.
 *
 * Its end is one state, however it comes (our close, the peer gone, a failed write): node
 * cancels writes still pending then (ECANCELED, EPIPE, ECONNRESET) through their callbacks,
 * and each such failure rejects only the promise its writer awaits, ends the connection
 * (reads see the end, later writes fail at once) and never escapes as an unhandled rejection,
 * which would end the whole agent. A write still pending when the socket has closed fails
 * then, whether or not node calls it back.
 */
export function nodeSocketConn(socket: tls.TLSSocket, remote: Address): NetConn {
  return new NodeSocketConn(socket, remote);
}

class NodeSocketConn implements NetConn {
  readonly remoteAddr: Address;
  readonly #socket: tls.TLSSocket;
  readonly #chunks: Uint8Array[] = [];
  #buffered = 0;
  #wake: (() => void) | null = null;
  /** How reads end once the queue is empty, set by the first end: "eof", or the failure. */
  #readEnd: Error | "eof" | null = null;
  /** What writes fail with once the connection is over. */
  #writeEnd: Error | null = null;
  /** The rejections of writes node has not called back yet. */
  readonly #pending = new Set<(e: Error) => void>();

  constructor(socket: tls.TLSSocket, remote: Address) {
    this.#socket = socket;
    this.remoteAddr = remote;
    socket.on("data", (chunk: Uint8Array) => {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
      if (this.#buffered > HIGH_WATER) socket.pause();
      this.#signal();
    });
    // The peer sent all it will: reads end; writes go on until node says otherwise.
    socket.on("end", () => {
      this.#readEnd ??= "eof";
      this.#signal();
    });
    socket.on("close", () => this.#over(null, "the connection closed"));
    socket.on("error", (e: Error) => this.#over(e));
  }

  async read(p: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      const end = this.#readEnd;
      if (end === "eof") return null;
      if (end) throw end;
      await new Promise<void>((r) => this.#wake = r);
    }
    const c = this.#chunks[0];
    const n = Math.min(c.length, p.length);
    p.set(c.subarray(0, n));
    if (n === c.length) this.#chunks.shift();
    else this.#chunks[0] = c.subarray(n);
    this.#buffered -= n;
    if (this.#buffered <= HIGH_WATER && this.#socket.isPaused()) this.#socket.resume();
    return n;
  }

  write(p: Uint8Array): Promise<number> {
    if (this.#writeEnd) return Promise.reject(this.#writeEnd);
    return new Promise<number>((resolve, reject) => {
      let settled = false;
      const fail = (e: Error) => {
        if (settled) return;
        settled = true;
        this.#pending.delete(fail);
        reject(e);
      };
      this.#pending.add(fail);
      // The callback comes once the bytes are taken (encrypted and handed on): only then may
      // the caller reuse `p`, which every writer here does by awaiting.
      const done = (e?: Error | null) => {
        if (e) {
          fail(e);
          return this.#over(e); // a failed write is the connection's end
        }
        if (settled) return;
        settled = true;
        this.#pending.delete(fail);
        resolve(p.length);
      };
      try {
        this.#socket.write(p, done);
      } catch (e) {
        done(e instanceof Error ? e : new Error(String(e)));
      }
    });
  }

  close(): void {
    this.#over(null, "the connection is closed");
    // Nobody reads any more.
    this.#chunks.length = 0;
    this.#buffered = 0;
  }

  /**
   * The connection is over, failed with `failure` or closed (`closed` says how): the first
   * end decides what reads and writes see from now on; the socket is destroyed and the writes
   * node has not called back fail.
   */
  #over(failure: Error | null, closed = ""): void {
    this.#readEnd ??= failure ?? "eof";
    this.#writeEnd ??= failure ?? new Deno.errors.BadResource(`Cannot write: ${closed}`);
    try {
      if (!this.#socket.destroyed) this.#socket.destroy();
    } catch { /* destroyed under us */ }
    const pending = [...this.#pending];
    this.#pending.clear();
    for (const fail of pending) fail(this.#writeEnd);
    this.#signal();
  }

  #signal(): void {
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }
}
