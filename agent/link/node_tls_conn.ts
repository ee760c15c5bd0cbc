/**
 * `node:tls` sockets as a {@linkcode NetConn}, for the two streams Deno's own TLS cannot make:
 * the unverified dial of CA discovery (the host does not know the CA yet and checks what it
 * receives against the hash in its join token; Deno cannot skip verification per
 * connection), and the hole-punched fast paths (agent/fastpath/punch.ts), whose
 * simultaneous-open sockets only node:net can make.
 *
 *     socket "data" ──> chunks (bounded by pausing the socket) ──> read(p)
 *     write(p) ──> socket.write, resolved when flushed to the kernel
 *
 * @module
 */

import * as tls from "node:tls";
import type { Address } from "../config/types.ts";
import type { NetConn } from "./transport.ts";

/** Unread bytes above which the socket is paused until the reader catches up. */
const HIGH_WATER = 256 * 1024;

/**
 * Opens an unverified TLS connection to `address`, sending `serverName` as SNI; resolves once
 * the TLS handshake is done.
 */
export function nodeTlsConn(address: Address, serverName: string): Promise<NetConn> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: address.hostname,
      port: address.port,
      servername: serverName,
      rejectUnauthorized: false,
    });
    socket.setNoDelay(true);
    socket.once("error", reject);
    const conn = nodeSocketConn(socket, { hostname: address.hostname, port: address.port });
    socket.once("secureConnect", () => resolve(conn));
  });
}

/**
 * A `node:tls` socket as a {@linkcode NetConn}: data events queue chunks (the socket pauses
 * above {@linkcode HIGH_WATER} unread bytes), reads take from the queue.
 */
export function nodeSocketConn(socket: tls.TLSSocket, remote: Address): NetConn {
  const chunks: Uint8Array[] = [];
  let buffered = 0;
  let ended = false;
  let failure: Error | null = null;
  let wake: (() => void) | null = null;
  const signal = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  socket.on("data", (chunk: Uint8Array) => {
    chunks.push(chunk);
    buffered += chunk.length;
    if (buffered > HIGH_WATER) socket.pause();
    signal();
  });
  const end = () => {
    ended = true;
    signal();
  };
  socket.on("end", end);
  socket.on("close", end);
  socket.on("error", (e: Error) => {
    failure ??= e;
    signal();
  });
  return {
    remoteAddr: remote,
    async read(p) {
      while (chunks.length === 0) {
        if (failure) throw failure;
        if (ended) return null;
        await new Promise<void>((r) => wake = r);
      }
      const c = chunks[0];
      const n = Math.min(c.length, p.length);
      p.set(c.subarray(0, n));
      if (n === c.length) chunks.shift();
      else chunks[0] = c.subarray(n);
      buffered -= n;
      if (buffered <= HIGH_WATER && socket.isPaused()) socket.resume();
      return n;
    },
    write(p) {
      if (failure) return Promise.reject(failure);
      // The callback comes once the bytes are taken (encrypted and handed on): only then may
      // the caller reuse `p`, which every writer here does by awaiting.
      return new Promise((res, rej) =>
        socket.write(p, (e?: Error | null) => e ? rej(e) : res(p.length))
      );
    },
    close() {
      ended = true;
      socket.destroy();
      signal();
    },
  };
}
