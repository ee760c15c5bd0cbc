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
 * No TLS, no switch, no counters, no queue, no promise on the hot path: only FFI calls. Its
 * RTT and CPU per ping are what the runtime itself costs (V8 and FFI crossings, and the
 * syscalls this loop makes), so the distance from vnet's fast path to this row is vnet's own
 * cost, and the distance from this row to tinc is the price of writing the data plane in
 * TypeScript at all. It is a measuring stick, not a product: a peer that misbehaves ends it.
 *
 * Usage (root, inside a host namespace of the lab):
 *
 *     deno run --allow-net --allow-ffi testbed/floor_relay.ts \
 *       (--listen | --connect) IP:PORT --tap NAME --bridge BRIDGE [--no-offload]
 *
 * It prints `floor relay up` once frames flow.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { addToBridge } from "../ffi/bridge.ts";
import { libc, POLLIN, POLLOUT } from "../ffi/libc.ts";
import { findTcpSocket } from "../ffi/socket.ts";
import { Tap } from "../ffi/tap.ts";

/** Largest TAP packet with offloads: 10-byte virtio-net header + 64 KiB frame. */
const MAX_PACKET = 65_550;
/** Length prefix of each packet on the stream. */
const PREFIX = 4;
const POLLERR = 0x008;
const POLLHUP = 0x010;

function parseEndpoint(text: string): { hostname: string; port: number } {
  const at = text.lastIndexOf(":");
  const port = Number(text.slice(at + 1));
  if (at < 1 || !Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new Error(`Cannot use endpoint "${text}": give IP:PORT, e.g. 10.0.0.1:7000`);
  }
  return { hostname: text.slice(0, at), port };
}

async function connectOrAccept(listen: string | undefined, connect: string | undefined) {
  if (listen !== undefined) {
    const listener = Deno.listen(parseEndpoint(listen));
    try {
      return await listener.accept();
    } finally {
      listener.close();
    }
  }
  const to = parseEndpoint(connect!);
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

/**
 * Relays until the peer closes or fails. Deno keeps the socket (it opened it), but nothing
 * here asks Deno to read or write it: the loop below owns the thread, so Deno's reactor never
 * runs and the socket is used through its descriptor alone.
 */
function relay(tap: Tap, sock: number): void {
  const c = libc();
  const fds = new Uint8Array(16);
  const fdView = new DataView(fds.buffer);
  fdView.setInt32(0, tap.fd, true);
  fdView.setInt16(4, POLLIN, true);
  fdView.setInt32(8, sock, true);
  fdView.setInt16(12, POLLIN, true);
  const waitOut = new Uint8Array(8);
  const waitOutView = new DataView(waitOut.buffer);
  waitOutView.setInt32(0, sock, true);
  waitOutView.setInt16(4, POLLOUT, true);

  const out = new Uint8Array(PREFIX + MAX_PACKET);
  const outView = new DataView(out.buffer);
  const inBuf = new Uint8Array(1 << 20);
  const inView = new DataView(inBuf.buffer);
  let have = 0;

  const sendAll = (bytes: Uint8Array) => {
    for (let off = 0; off < bytes.length;) {
      const n = Number(c.write(sock, bytes.subarray(off), BigInt(bytes.length - off)));
      if (n > 0) off += n;
      else c.poll(waitOut, 1n, 1000); // the socket is full: wait for room
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
    }
    const sockEvents = fdView.getInt16(14, true);
    if (sockEvents === 0) continue;
    for (;;) {
      const n = Number(c.read(sock, inBuf.subarray(have), BigInt(inBuf.length - have)));
      if (n === 0) return; // the peer closed
      if (n < 0) {
        if (sockEvents & (POLLERR | POLLHUP)) return;
        break; // drained
      }
      have += n;
      let off = 0;
      while (have - off >= PREFIX) {
        const len = inView.getUint32(off);
        if (len > MAX_PACKET) throw new Error(`Cannot relay: peer sent a ${len}-byte packet`);
        if (have - off < PREFIX + len) break;
        tap.write(inBuf.subarray(off + PREFIX, off + PREFIX + len));
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
  const { values } = parseArgs({
    options: {
      listen: { type: "string" },
      connect: { type: "string" },
      tap: { type: "string", default: "floor0" },
      bridge: { type: "string" },
      "no-offload": { type: "boolean", default: false },
    },
  });
  if ((values.listen === undefined) === (values.connect === undefined) || !values.bridge) {
    throw new Error("Cannot start: give --listen IP:PORT or --connect IP:PORT, and --bridge NAME");
  }
  const conn = await connectOrAccept(values.listen, values.connect);
  conn.setNoDelay(true);
  const sock = findTcpSocket(conn.localAddr, conn.remoteAddr);
  if (sock < 0) throw new Error("Cannot find the TCP connection's descriptor");
  const superframes = !values["no-offload"];
  const tap = Tap.create({ name: values.tap, vnetHdr: superframes, offload: superframes });
  try {
    tap.setMtu(1500);
    tap.setUp();
    addToBridge(values.bridge, tap.name);
    console.log("floor relay up");
    relay(tap, sock);
  } finally {
    tap.close();
    conn.close();
  }
}

if (import.meta.main) await main();
