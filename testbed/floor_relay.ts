/**
 * The floor of any TypeScript data plane on this machine: the least a Deno program can do to
 * carry a VM's frames to another host, measured beside vnet and tinc in the same lab run.
 *
 * One TAP (virtio-net header and offloads like the agent's, unless --no-offload), one plain TCP
 * connection, one
 * synchronous poll(2) loop that never returns to Deno's event loop:
 *
 *     poll([tap, socket]) -> read the TAP until empty -> 4-byte length + packet -> write
 *                         -> read the socket until empty -> whole packets -> write the TAP
 *
 * No switch, no counters, no queue, no promise on the hot path: only FFI calls. Plain, its RTT
 * and CPU per ping are what the runtime itself costs (V8 and FFI crossings, and the syscalls
 * this loop makes); with `--tls-*` the stream is TLS 1.3 by OpenSSL ({@link ./floor_openssl.ts}),
 * also synchronous, which is what encryption adds at the least. So the distance from vnet's
 * fast path to these rows is vnet's own cost, and the distance from them to tinc is the price
 * of a data plane in TypeScript at all. A measuring stick, not a product: a peer that
 * misbehaves ends it.
 *
 * Usage (root, inside a host namespace of the lab):
 *
 *     deno run --allow-net --allow-ffi testbed/floor_relay.ts \
 *       (--listen | --connect) IP:PORT --tap NAME --bridge BRIDGE [--no-offload]
 *       [--tls-cert FILE --tls-key FILE (with --listen) | --tls-ca FILE --tls-name NAME]
 *
 * It prints `floor relay up` once frames flow.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { parseAddress } from "../agent/config/types.ts";
import { addToBridge } from "../ffi/bridge.ts";
import { EAGAIN } from "../ffi/errors.ts";
import { errno, lastError, libc, POLLIN, POLLOUT } from "../ffi/libc.ts";
import { findTcpSocket } from "../ffi/socket.ts";
import { Tap } from "../ffi/tap.ts";
import { FloorTls, WANT_READ, WANT_WRITE } from "./floor_openssl.ts";

/** Largest TAP packet with offloads: 10-byte virtio-net header + 64 KiB frame. */
const MAX_PACKET = 65_550;
/** Length prefix of each packet on the stream. */
const PREFIX = 4;
/** Longest TLS handshake before the relay gives up. */
const HANDSHAKE_MS = 10_000;

/**
 * The relay's byte stream, plain or TLS, synchronous on the non-blocking socket: byte counts,
 * 0 at the end of the stream (reads), or {@linkcode WANT_READ} / {@linkcode WANT_WRITE}.
 */
interface Stream {
  read(into: Uint8Array): number;
  write(from: Uint8Array): number;
  /** Sends what writes left buffered: 0 when done, or {@linkcode WANT_WRITE}. */
  flush(): number;
}

/** Plain TCP: read(2) and write(2) on the descriptor. */
function plainStream(fd: number): Stream {
  const c = libc();
  const fail = (syscall: string) => lastError({ syscall, action: "relay", detail: "TCP socket" });
  return {
    read(into) {
      const n = Number(c.read(fd, into, BigInt(into.length)));
      if (n >= 0) return n;
      if (errno() === EAGAIN) return WANT_READ;
      throw fail("read");
    },
    write(from) {
      const n = Number(c.write(fd, from, BigInt(from.length)));
      if (n >= 0) return n;
      if (errno() === EAGAIN) return WANT_WRITE;
      throw fail("write");
    },
    flush: () => 0, // write(2) buffers nothing
  };
}

/** Waits until `fd` is ready for what `want` asks, at most `ms`. */
function waitFor(fd: number, want: number, ms: number): void {
  const p = new Uint8Array(8);
  const v = new DataView(p.buffer);
  v.setInt32(0, fd, true);
  v.setInt16(4, want === WANT_READ ? POLLIN : POLLOUT, true);
  libc().poll(p, 1n, ms);
}

async function connectOrAccept(listen: string | undefined, connect: string | undefined) {
  if (listen !== undefined) {
    const listener = Deno.listen(parseAddress(listen));
    try {
      return await listener.accept();
    } finally {
      listener.close();
    }
  }
  const to = parseAddress(connect!);
  // The listening side may start a moment later.
  for (let attempt = 0;; attempt++) {
    try {
      return await Deno.connect(to);
    } catch (e) {
      if (attempt >= 100) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Completes the TLS handshake on `fd`, synchronously. */
function handshake(tls: FloorTls, fd: number): void {
  const until = performance.now() + HANDSHAKE_MS;
  for (let step = tls.handshake(); step !== 0; step = tls.handshake()) {
    if (performance.now() > until) throw new Error("Cannot complete the TLS handshake in time");
    waitFor(fd, step, 100);
  }
}

/**
 * Relays until the peer closes. Deno keeps the socket (it opened it), but nothing here asks
 * Deno to read or write it: the loop below owns the thread, so Deno's reactor never runs and
 * the socket is used through its descriptor alone.
 */
function relay(tap: Tap, sock: number, stream: Stream): void {
  const c = libc();
  const fds = new Uint8Array(16);
  const fdView = new DataView(fds.buffer);
  fdView.setInt32(0, tap.fd, true);
  fdView.setInt16(4, POLLIN, true);
  fdView.setInt32(8, sock, true);
  fdView.setInt16(12, POLLIN, true);

  const out = new Uint8Array(PREFIX + MAX_PACKET);
  const outView = new DataView(out.buffer);
  const inBuf = new Uint8Array(1 << 20);
  const inView = new DataView(inBuf.buffer);
  let have = 0;

  const sendAll = (bytes: Uint8Array) => {
    for (let off = 0; off < bytes.length;) {
      const n = stream.write(bytes.subarray(off));
      if (n > 0) off += n;
      else waitFor(sock, n, 1000); // the socket is full
    }
  };

  for (;;) {
    fdView.setInt16(6, 0, true);
    fdView.setInt16(14, 0, true);
    c.poll(fds, 2n, -1);
    if (fdView.getInt16(6, true) !== 0) {
      for (let n = tap.readInto(out, PREFIX); n > 0; n = tap.readInto(out, PREFIX)) {
        outView.setUint32(0, n);
        sendAll(out.subarray(0, PREFIX + n));
      }
      for (let r = stream.flush(); r !== 0; r = stream.flush()) waitFor(sock, r, 1000);
    }
    if (fdView.getInt16(14, true) === 0) continue;
    for (;;) {
      const n = stream.read(inBuf.subarray(have));
      if (n === 0) return; // the peer closed
      if (n < 0) break; // drained
      have += n;
      let off = 0;
      while (have - off >= PREFIX) {
        const len = inView.getUint32(off);
        if (len > MAX_PACKET) throw new Error(`Cannot relay: peer sent a ${len}-byte packet`);
        if (have - off < PREFIX + len) break;
        try {
          tap.write(inBuf.subarray(off + PREFIX, off + PREFIX + len));
        } catch {
          // The kernel refused this packet (the agent counts such drops; the stick does not
          // need to): drop it, as a full TAP queue does, and let TCP in the VMs resend.
        }
        off += PREFIX + len;
      }
      if (off > 0) {
        inBuf.copyWithin(0, off, have);
        have -= off;
      }
    }
  }
}

async function main(): Promise<void> {
  const { values: v } = parseArgs({
    options: {
      listen: { type: "string" },
      connect: { type: "string" },
      tap: { type: "string", default: "floor0" },
      bridge: { type: "string" },
      "no-offload": { type: "boolean", default: false },
      "tls-cert": { type: "string" },
      "tls-key": { type: "string" },
      "tls-ca": { type: "string" },
      "tls-name": { type: "string" },
    },
  });
  if ((v.listen === undefined) === (v.connect === undefined) || !v.bridge) {
    throw new Error("Cannot start: give --listen IP:PORT or --connect IP:PORT, and --bridge NAME");
  }
  const tlsServer = v["tls-cert"] !== undefined && v["tls-key"] !== undefined;
  const tlsClient = v["tls-ca"] !== undefined && v["tls-name"] !== undefined;
  if ((tlsServer && v.listen === undefined) || (tlsClient && v.connect === undefined)) {
    throw new Error(
      "Cannot start: --tls-cert/--tls-key go with --listen, --tls-ca/--tls-name with --connect",
    );
  }
  const conn = await connectOrAccept(v.listen, v.connect);
  conn.setNoDelay(true);
  const sock = findTcpSocket(conn.localAddr, conn.remoteAddr);
  if (sock < 0) throw new Error("Cannot find the TCP connection's descriptor");
  let stream = plainStream(sock);
  let kind = "plain TCP";
  if (tlsServer || tlsClient) {
    const tls = new FloorTls(
      sock,
      tlsServer
        ? { role: "server", certFile: v["tls-cert"]!, keyFile: v["tls-key"]! }
        : { role: "client", caFile: v["tls-ca"]!, serverName: v["tls-name"]! },
    );
    handshake(tls, sock);
    stream = tls;
    kind = "TLS";
  }
  const superframes = !v["no-offload"];
  const tap = Tap.create({ name: v.tap, vnetHdr: superframes, offload: superframes });
  try {
    tap.setMtu(1500);
    tap.setUp();
    addToBridge(v.bridge, tap.name);
    console.log(`floor relay up (${kind})`);
    relay(tap, sock, stream);
  } finally {
    tap.close();
    conn.close();
  }
}

if (import.meta.main) await main();
