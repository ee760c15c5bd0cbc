import assert from "node:assert/strict";
import { PacketBatch } from "../../../agent/device/device.ts";
import { MemoryDevice } from "../../../agent/device/memory_device.ts";
import { readVnetHeader } from "../../../agent/device/vnet_header.ts";
import { ipv4, mac, tcpSuperframe } from "../../support/packets.ts";

const never = new AbortController().signal;

function frame(marker: number, length = 60): Uint8Array {
  return new Uint8Array(length).fill(marker);
}

/** A plain packet: zeroed header, then `length - 10` bytes of `marker`. */
function packet(marker: number, length = 70): Uint8Array {
  return new Uint8Array(length).fill(marker, 10);
}

function superframe(payload: number, gsoSize: number): Uint8Array {
  return tcpSuperframe({
    dstMac: mac("02:00:00:00:00:02"),
    srcMac: mac("02:00:00:00:00:01"),
    src: ipv4("10.0.0.1"),
    dst: ipv4("10.0.0.2"),
    payload,
    gsoSize,
  });
}

Deno.test("MemoryDevice: injected frames are read in order behind a zeroed header", async () => {
  const device = new MemoryDevice({ name: "vm1" });
  device.inject(frame(1));
  device.inject(frame(2, 100));
  device.inject(frame(3));
  const batch = new PacketBatch(2, 2048);
  assert.equal(await device.read(batch, never), 2);
  assert.equal(batch.count, 2);
  assert.deepEqual(batch.packet(0).subarray(0, 10), new Uint8Array(10));
  assert.equal(batch.packet(0)[10], 1);
  assert.equal(batch.packet(1).length, 110);
  assert.equal(batch.packet(1)[10], 2);
  assert.equal(await device.read(batch, never), 1);
  assert.equal(batch.packet(0)[10], 3);
  assert.equal(device.stats.rxPackets, 3);
  assert.equal(device.stats.rxBytes, 220);
});

Deno.test("MemoryDevice: a header given to inject is kept", async () => {
  const device = new MemoryDevice();
  const header = { flags: 1, gsoType: 1, hdrLen: 54, gsoSize: 1448, csumStart: 34, csumOffset: 16 };
  device.inject(frame(9), header);
  const batch = new PacketBatch(1, 2048);
  await device.read(batch, never);
  assert.deepEqual(readVnetHeader(batch.packet(0)), header);
});

Deno.test("MemoryDevice: the input queue is bounded and counts what it refuses", () => {
  const device = new MemoryDevice({ queueCapacity: 2 });
  assert.equal(device.inject(frame(1)), true);
  assert.equal(device.injectPacket(new Uint8Array(70)), true);
  assert.equal(device.inject(frame(3)), false);
  assert.equal(device.queued, 2);
  assert.equal(device.inboundDropped, 1);
});

Deno.test("MemoryDevice: read waits for an injection, and resolves 0 on abort or close", async () => {
  const device = new MemoryDevice();
  const batch = new PacketBatch(4, 2048);
  const pending = device.read(batch, never);
  setTimeout(() => device.inject(frame(5)), 5);
  assert.equal(await pending, 1);

  const controller = new AbortController();
  const aborted = device.read(batch, controller.signal);
  controller.abort();
  assert.equal(await aborted, 0);
  assert.equal(batch.count, 0);

  const closing = device.read(batch, never);
  device.close();
  assert.equal(await closing, 0);
  assert.equal(device.inject(frame(6)), false, "a closed device takes nothing");
});

Deno.test("MemoryDevice: a slot too small for a packet is a RangeError, the packet stays", async () => {
  const device = new MemoryDevice();
  device.inject(frame(1, 500));
  await assert.rejects(device.read(new PacketBatch(1, 100), never), RangeError);
  assert.equal(device.queued, 1);
});

Deno.test("MemoryDevice: writes are copied into `written`, bounded like a full device", () => {
  const device = new MemoryDevice({ writtenCapacity: 1 });
  const p = packet(4);
  assert.equal(device.write(p), true);
  p.fill(0);
  assert.equal(device.written[0][20], 4, "a copy, not the caller's buffer");
  assert.equal(device.write(p), false);
  assert.equal(device.stats.txDropped, 1);
  device.written.length = 0;
  assert.equal(device.write(p), true);
  assert.equal(device.write(new Uint8Array(5)), false, "shorter than the header");
  assert.deepEqual(
    { txPackets: device.stats.txPackets, txBytes: device.stats.txBytes },
    { txPackets: 2, txBytes: 120 },
  );
});

Deno.test("MemoryDevice: onWrite sees each packet instead of `written`", () => {
  const device = new MemoryDevice();
  const seen: number[] = [];
  device.onWrite = (p) => seen.push(p.length);
  device.write(new Uint8Array(70));
  assert.deepEqual(seen, [70]);
  assert.equal(device.written.length, 0);
});

Deno.test("MemoryDevice: two devices wired through onWrite/injectPacket", async () => {
  const left = new MemoryDevice({ name: "left" });
  const right = new MemoryDevice({ name: "right" });
  left.onWrite = (p) => right.injectPacket(p);
  assert.equal(left.write(packet(8)), true);
  const batch = new PacketBatch(1, 2048);
  assert.equal(await right.read(batch, never), 1);
  assert.equal(batch.packet(0)[69], 8);
});

Deno.test("MemoryDevice without offload cuts superframes; with offload keeps them whole", () => {
  const plain = new MemoryDevice({ mtu: 1500, offload: false });
  assert.equal(plain.write(superframe(3000, 1000)), true);
  assert.equal(plain.written.length, 3);
  for (const p of plain.written) {
    assert.deepEqual(p.subarray(0, 10), new Uint8Array(10), "plain frames carry a zero header");
    assert.equal(p.length, 10 + 54 + 1000);
  }
  assert.equal(plain.stats.txSegmented, 1);
  assert.equal(plain.stats.txPackets, 3);

  const offload = new MemoryDevice({ offload: true });
  assert.equal(offload.write(superframe(3000, 1000)), true);
  assert.equal(offload.written.length, 1);
  assert.equal(offload.written[0].length, 10 + 54 + 3000);
  assert.equal(offload.stats.txSegmented, 0);
});

Deno.test("MemoryDevice: a malformed superframe is dropped and counted, never thrown", () => {
  const device = new MemoryDevice({ offload: false });
  const bad = superframe(3000, 1000).subarray(0, 40); // cut inside the IP header
  assert.equal(device.write(bad), false);
  assert.equal(device.stats.txDropped, 1);
  assert.equal(device.written.length, 0);
});

Deno.test("MemoryDevice: bad capacities are refused with the key named", () => {
  assert.throws(() => new MemoryDevice({ queueCapacity: 0 }), /queueCapacity must be/);
  assert.throws(() => new MemoryDevice({ writtenCapacity: 1.5 }), /writtenCapacity must be/);
});
