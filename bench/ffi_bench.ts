/**
 * How fast the FFI TAP path moves 1500-byte frames, beside what the kernel alone does with the
 * same frames, measured in one run inside a throwaway namespace (root only):
 *
 *     kernel, UDP      sender --sendmmsg UDP--> veth A -> veth B     count: B's rx counter
 *     TAP read         sender --sendmmsg UDP--> TAP -> Tap.readInto  count: frames read
 *     kernel, raw      sender --sendmmsg AF_PACKET--> veth A -> B    count: B's rx counter
 *     TAP write        Tap.write -> TAP -> kernel                    count: TAP's rx counter
 *
 * The sender is a child process (`--sender`, run with `ip netns exec`) that hands the kernel
 * 64 frames per sendmmsg call, so each frame costs the kernel's work and almost no user-space
 * work. Its UDP flood is the baseline for reading (the kernel producing and delivering frames
 * alone) and the load for the read test; its AF_PACKET flood of the very frames Tap.write
 * writes is the baseline for writing (handing prebuilt frames to the kernel, batched).
 * Frames are 1514 bytes (Ethernet + IPv4 + UDP + 1472); Gbit/s counts those bytes.
 *
 *     usage: deno run --allow-all bench/ffi_bench.ts [--seconds N]
 *
 * @module
 */

import { libc, Tap } from "../ffi/mod.ts";
import { Netns, uniqueIfName } from "../tests/support/netns.ts";
import { numberFlag } from "./cli.ts";
import { formatRate } from "../agent/rate.ts";
import { DeviceWait } from "../agent/device/device_wait.ts";

const FRAME_BYTES = 1514;
const UDP_PAYLOAD = FRAME_BYTES - 14 - 20 - 8;
const SEND_BATCH = 64;
const TARGET_READ_FPS = 150_000;
const PEER_MAC = "02:00:00:00:03:02";

// ---------------------------------------------------------------------------------------------
// Sender (child process inside the namespace)

/**
 * Floods for `seconds` and prints {"sent": N}: `udp A.B.C.D` sends UDP datagrams to port 9 of
 * that address; `packet IFNAME` sends {@linkcode writeFrame}'s frame out of IFNAME raw.
 */
function runSender(mode: string, target: string, seconds: number): void {
  const extra = Deno.dlopen("libc.so.6", {
    sendmmsg: {
      parameters: [
        "i32", // int sockfd
        "buffer", // struct mmsghdr *msgvec
        "u32", // unsigned int vlen
        "i32", // int flags
      ],
      result: "i32", // int messages sent
    },
  });
  // Every buffer whose address goes into a structure is an explicit ArrayBuffer (never moved
  // by V8) and stays referenced by these constants until the function returns.
  let fd: number;
  let data: Uint8Array;
  const address = new Uint8Array(new ArrayBuffer(20)); // sockaddr_in or sockaddr_ll
  const addressView = new DataView(address.buffer);
  if (mode === "udp") {
    fd = libc().socket(2, 2, 0); // AF_INET, SOCK_DGRAM
    data = new Uint8Array(new ArrayBuffer(UDP_PAYLOAD));
    addressView.setUint16(0, 2, true); // sin_family AF_INET
    addressView.setUint16(2, 9, false); // sin_port 9 (discard)
    address.set(target.split(".").map(Number), 4); // sin_addr
  } else {
    fd = libc().socket(17, 3, 0); // AF_PACKET, SOCK_RAW, protocol 0: send only
    data = new Uint8Array(new ArrayBuffer(FRAME_BYTES));
    writeFrame(data);
    const ifindex = libc().if_nametoindex(new TextEncoder().encode(target + "\0"));
    if (ifindex === 0) throw new Error(`Cannot flood: no interface ${target}`);
    addressView.setUint16(0, 17, true); // sll_family AF_PACKET
    addressView.setInt32(4, ifindex, true); // sll_ifindex
  }
  if (fd < 0) throw new Error("Cannot flood: socket() failed");
  const iov = new Uint8Array(new ArrayBuffer(16)); // struct iovec
  const iovView = new DataView(iov.buffer);
  iovView.setBigUint64(0, addressOf(data), true);
  iovView.setBigUint64(8, BigInt(data.length), true);
  // struct mmsghdr: struct msghdr (56 bytes) + unsigned int msg_len, padded to 64.
  const vec = new Uint8Array(new ArrayBuffer(64 * SEND_BATCH));
  const vecView = new DataView(vec.buffer);
  for (let i = 0; i < SEND_BATCH; i++) {
    const m = i * 64;
    vecView.setBigUint64(m, addressOf(address), true); // msg_name
    vecView.setUint32(m + 8, mode === "udp" ? 16 : 20, true); // msg_namelen
    vecView.setBigUint64(m + 16, addressOf(iov), true); // msg_iov
    vecView.setBigUint64(m + 24, 1n, true); // msg_iovlen
  }
  let sent = 0;
  const deadline = performance.now() + seconds * 1000;
  while (performance.now() < deadline) {
    const n = extra.symbols.sendmmsg(fd, vec, SEND_BATCH, 0);
    if (n > 0) sent += n;
  }
  libc().close(fd);
  console.log(JSON.stringify({ sent, bytes: data.length + address.length + iov.length }));
}

/**
 * The 1514-byte frame both write paths send: UDP from 10.203.0.2 to 10.203.0.1, addressed to a
 * MAC that is nobody's, so the receiving kernel drops it as "other host" right after taking it.
 */
function writeFrame(frame: Uint8Array): void {
  frame.set([0x02, 0, 0, 0, 0x03, 0x09, 0x02, 0, 0, 0, 0x03, 0x02, 0x08, 0x00]);
  frame.set([0x45, 0, (FRAME_BYTES - 14) >> 8, (FRAME_BYTES - 14) & 0xff, 0, 0, 0x40, 0, 64, 17]);
  frame.set([10, 203, 0, 2, 10, 203, 0, 1], 26);
}

function addressOf(buffer: Uint8Array): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buffer)));
}

// ---------------------------------------------------------------------------------------------
// Orchestrator

/** Starts the sender inside `ns`; resolves to the frames it handed to the kernel. */
function startSender(ns: Netns, mode: string, target: string, seconds: number): Promise<number> {
  const child = ns.spawn(
    Deno.execPath(),
    "run",
    "--allow-ffi",
    "--allow-sys=uid",
    new URL(import.meta.url).pathname,
    "--sender",
    mode,
    target,
    String(seconds),
  );
  return child.output().then((out) => {
    if (!out.success) {
      throw new Error(`Cannot flood: sender failed: ${new TextDecoder().decode(out.stderr)}`);
    }
    return JSON.parse(new TextDecoder().decode(out.stdout)).sent as number;
  });
}

async function txDropped(ns: Netns, ifName: string): Promise<number> {
  const [link] = JSON.parse(await ns.ip("-s", "-j", "link", "show", "dev", ifName));
  return link.stats64.tx.dropped;
}

/** Frames/s the kernel delivers to `peer` while the sender floods in `mode` for `seconds`. */
async function kernelOnly(
  ns: Netns,
  mode: string,
  target: string,
  peer: string,
  seconds: number,
): Promise<number> {
  const before = await ns.counters(peer);
  const offered = await startSender(ns, mode, target, seconds);
  const delivered = (await ns.counters(peer)).rxPackets - before.rxPackets;
  console.error(`  kernel only (${mode}): offered ${offered}, delivered ${delivered}`);
  return delivered / seconds; // the sender's own clock ran `seconds`
}

async function tapRead(
  ns: Netns,
  tap: Tap,
  seconds: number,
  stop: AbortSignal,
): Promise<{ framesPerSec: number; offeredPerSec: number; droppedPerSec: number }> {
  const droppedBefore = await txDropped(ns, tap.name);
  const buf = new Uint8Array(65_550);
  const sender = startSender(ns, "udp", "10.203.0.2", seconds + 1);
  // The window opens at the first frame, so the child's start-up is not counted.
  // Waited for as the agent waits for its TAP (on the event loop's thread, by default).
  const ready = new DeviceWait("event-loop").forDescriptor(tap.fd);
  while (tap.readInto(buf, 0) < 0 && !stop.aborted) await ready.wait(100);
  let frames = 0;
  let bytes = 0;
  const started = performance.now();
  const end = started + seconds * 1000;
  while (!stop.aborted) {
    const n = tap.readInto(buf, 0);
    if (n >= 0) {
      frames++;
      bytes += n;
      if ((frames & 1023) === 0 && performance.now() >= end) break;
    } else {
      if (performance.now() >= end) break;
      await ready.wait(20);
    }
  }
  const elapsed = (performance.now() - started) / 1000;
  const offered = await sender;
  while (tap.readInto(buf, 0) >= 0); // leave the TAP empty for the next run
  const dropped = (await txDropped(ns, tap.name)) - droppedBefore;
  if (frames > 0 && Math.round(bytes / frames) !== FRAME_BYTES + 10) {
    throw new Error(`Cannot measure: read ${bytes / frames} bytes per frame, expected 1524`);
  }
  return {
    framesPerSec: frames / elapsed,
    offeredPerSec: offered / (seconds + 1),
    droppedPerSec: dropped / (seconds + 1),
  };
}

/** Frames/s the kernel accepts from a Tap.write loop running for `seconds`. */
async function tapWrite(ns: Netns, tap: Tap, seconds: number, stop: AbortSignal): Promise<number> {
  const packet = new Uint8Array(10 + FRAME_BYTES); // zeroed virtio-net header, then the frame
  writeFrame(packet.subarray(10));
  const before = await ns.counters(tap.name);
  let written = 0;
  let refused = 0;
  const started = performance.now();
  const end = started + seconds * 1000;
  while (!stop.aborted) {
    for (let i = 0; i < 1024; i++) {
      if (tap.write(packet) >= 0) written++;
      else refused++;
    }
    if (performance.now() >= end) break;
  }
  const elapsed = (performance.now() - started) / 1000;
  const accepted = (await ns.counters(tap.name)).rxPackets - before.rxPackets;
  console.error(`  TAP write: written ${written}, EAGAIN ${refused}, kernel rx ${accepted}`);
  return accepted / elapsed;
}

function ratio(value: number, baseline: number): string {
  return `${(value / baseline).toFixed(2)}x`;
}

function gbits(framesPerSec: number): string {
  return formatRate(framesPerSec * FRAME_BYTES, { unit: "Gbit/s", showUnit: false });
}

async function main(seconds: number): Promise<number> {
  if (Deno.uid() !== 0) {
    console.error("ffi_bench needs root (namespaces, TAP devices); nothing was measured.");
    return 1;
  }
  const stop = new AbortController();
  const onSigint = () => stop.abort();
  Deno.addSignalListener("SIGINT", onSigint);
  const ns = await Netns.create("bench");
  let tap: Tap | undefined;
  try {
    await ns.exec("sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1");
    await ns.exec("sysctl", "-q", "-w", "net.ipv6.conf.default.disable_ipv6=1");
    const [vethA, vethB] = [uniqueIfName("ba"), uniqueIfName("bb")];
    await ns.ip("link", "add", vethA, "type", "veth", "peer", "name", vethB);
    await ns.ip("addr", "add", "10.203.1.1/24", "dev", vethA);
    await ns.ip("link", "set", vethA, "up");
    await ns.ip("link", "set", vethB, "up");
    await ns.ip("neigh", "add", "10.203.1.2", "lladdr", PEER_MAC, "dev", vethA);

    tap = Tap.create({ name: uniqueIfName("bt"), vnetHdr: true, offload: false });
    await ns.adopt(tap.name);
    await ns.ip("addr", "add", "10.203.0.1/24", "dev", tap.name);
    await ns.ip("link", "set", tap.name, "up");
    await ns.ip("neigh", "add", "10.203.0.2", "lladdr", PEER_MAC, "dev", tap.name);

    console.error(`measuring for ${seconds} s each in namespace ${ns.name} ...`);
    const kernelUdp = await kernelOnly(ns, "udp", "10.203.1.2", vethB, seconds);
    const read = await tapRead(ns, tap, seconds, stop.signal);
    const kernelRaw = await kernelOnly(ns, "packet", vethA, vethB, seconds);
    const write = await tapWrite(ns, tap, seconds, stop.signal);
    if (stop.signal.aborted) return 130;

    const rows: [string, number, string][] = [
      ["kernel: sendmmsg UDP flood -> veth peer", kernelUdp, "baseline"],
      [
        "TAP read: same flood -> TAP -> Tap.readInto",
        read.framesPerSec,
        ratio(read.framesPerSec, kernelUdp),
      ],
      ["kernel: sendmmsg AF_PACKET frames -> veth peer", kernelRaw, "baseline"],
      ["TAP write: Tap.write, same frames -> kernel", write, ratio(write, kernelRaw)],
    ];
    const width = Math.max(...rows.map(([path]) => path.length));
    const count = (n: number) => Math.round(n).toLocaleString("en");
    console.log(
      `\n1514-byte frames, ${seconds} s per path, one run, ${navigator.hardwareConcurrency} CPUs\n`,
    );
    console.log(
      `${"path".padEnd(width)}  ${"frames/s".padStart(10)}  ${"Gbit/s".padStart(6)}  vs kernel`,
    );
    for (const [path, fps, vs] of rows) {
      console.log(
        `${path.padEnd(width)}  ${count(fps).padStart(10)}  ${gbits(fps).padStart(6)}  ${vs}`,
      );
    }
    console.log(`
kernel rows: a child process hands the kernel 64 frames per sendmmsg call (no per-frame
user-space work); the veth peer's rx counter says how many the kernel delivered per second.
TAP read: the flood offered ${count(read.offeredPerSec)} frames/s to the TAP; the kernel dropped
${
      count(read.droppedPerSec)
    } frames/s there (TAP tx_dropped) because the reader was behind, so the row is
the reader's own rate. TAP write: one write(2) per frame; the TAP's rx counter says how many the
kernel took. Both write paths send frames addressed to nobody's MAC, dropped once received.`);
    const pass = read.framesPerSec >= TARGET_READ_FPS;
    console.log(
      `\ntarget TAP read >= ${count(TARGET_READ_FPS)} frames/s: ${pass ? "met" : "NOT met"}`,
    );
    return pass ? 0 : 2;
  } finally {
    tap?.close();
    await ns.destroy();
    Deno.removeSignalListener("SIGINT", onSigint);
  }
}

if (import.meta.main) {
  if (Deno.args[0] === "--sender") {
    runSender(Deno.args[1], Deno.args[2], Number(Deno.args[3]));
  } else {
    Deno.exit(await main(numberFlag("--seconds", 3)));
  }
}
