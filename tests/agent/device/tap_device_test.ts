import assert from "node:assert/strict";
import { PacketBatch } from "../../../agent/device/device.ts";
import { VNET_HDR_LEN } from "../../../agent/packet/layout.ts";
import { TapDevice } from "../../../agent/device/tap_device.ts";
import { DeviceWait } from "../../../agent/device/device_wait.ts";
import {
  arpReply,
  echoReply,
  ipv4,
  isArpRequestFor,
  isEchoRequestTo,
  mac,
  tcpSuperframe,
} from "../../support/packets.ts";
import { IS_ROOT, Netns, ROOT_ONLY, run, uniqueIfName } from "../../support/netns.ts";

const PEER_IP = ipv4("10.201.0.2");
const PEER_MAC = mac("02:00:00:00:01:02");
const TAP_MAC = mac("02:00:00:00:01:01");

/** Reads batches until a packet's frame satisfies `match`; returns a copy of that packet. */
async function readUntil(
  device: TapDevice,
  batch: PacketBatch,
  match: (frame: Uint8Array) => boolean,
): Promise<Uint8Array> {
  const signal = AbortSignal.timeout(5000);
  while (!signal.aborted) {
    const n = await device.read(batch, signal);
    for (let i = 0; i < n; i++) {
      const packet = batch.packet(i);
      if (match(packet.subarray(VNET_HDR_LEN))) return packet.slice();
    }
  }
  throw new Error("no matching frame within 5 s");
}

/** A plain packet (zeroed header) around `frame`. */
function plain(frame: Uint8Array): Uint8Array {
  const packet = new Uint8Array(VNET_HDR_LEN + frame.length);
  packet.set(frame, VNET_HDR_LEN);
  return packet;
}

/** The agent's default way of waiting, shared by the tests' devices as the agent's are. */
const eventLoopWait = new DeviceWait("event-loop");

/** A TAP device moved into a fresh namespace, up, with 10.201.0.1/24. */
async function tapInNamespace(offload: boolean): Promise<{ device: TapDevice; ns: Netns }> {
  const ns = await Netns.create("tapdev");
  try {
    const device = TapDevice.open({
      name: uniqueIfName("d"),
      mtu: 1500,
      mac: TAP_MAC,
      offload,
      wait: eventLoopWait,
    });
    try {
      await ns.adopt(device.name);
      await ns.ip("addr", "add", "10.201.0.1/24", "dev", device.name);
      await ns.ip("link", "set", device.name, "up");
      return { device, ns };
    } catch (e) {
      device.close();
      throw e;
    }
  } catch (e) {
    await ns.destroy();
    throw e;
  }
}

Deno.test({
  name: "TapDevice.open sets MTU, MAC and up; close removes the interface" + ROOT_ONLY,
  ignore: !IS_ROOT,
  async fn() {
    const device = TapDevice.open({
      name: uniqueIfName("o"),
      mtu: 1400,
      mac: TAP_MAC,
      offload: true,
    });
    try {
      assert.equal(device.offload, true);
      assert.equal(device.mtu, 1400);
      const [link] = JSON.parse(await run(["ip", "-j", "link", "show", "dev", device.name]));
      assert.equal(link.mtu, 1400);
      assert.equal(link.address, "02:00:00:00:01:01");
      assert.ok(link.flags.includes("UP"));
    } finally {
      device.close();
    }
    device.close();
    await assert.rejects(run(["ip", "link", "show", "dev", device.name]), /does not exist/);
    assert.equal(await device.read(new PacketBatch(1), new AbortController().signal), 0);
    assert.equal(device.write(plain(new Uint8Array(60))), false);
    assert.equal(device.stats.txDropped, 1);
  },
});

for (const offload of [false, true]) {
  Deno.test({
    name: `TapDevice (offload ${offload}): ARP and ping through read/write, with the ` +
      `virtio-net header on every packet` + ROOT_ONLY,
    ignore: !IS_ROOT,
    async fn() {
      const { device, ns } = await tapInNamespace(offload);
      let ping: Deno.ChildProcess | undefined;
      try {
        ping = ns.spawn("ping", "-n", "-c", "1", "-W", "5", "10.201.0.2");
        const batch = new PacketBatch(8);
        const arp = await readUntil(device, batch, (f) => isArpRequestFor(f, PEER_IP));
        assert.equal(arp.length, VNET_HDR_LEN + 42, "10-byte header + 42-byte ARP frame");
        assert.equal(arp[1], 0, "gso_type NONE");
        assert.ok(device.write(plain(arpReply(arp.subarray(VNET_HDR_LEN), PEER_MAC, PEER_IP))));
        const echo = await readUntil(device, batch, (f) => isEchoRequestTo(f, PEER_MAC, PEER_IP));
        assert.ok(device.write(plain(echoReply(echo.subarray(VNET_HDR_LEN)))));
        const status = await ping.output();
        ping = undefined;
        assert.equal(status.code, 0, new TextDecoder().decode(status.stdout));
        assert.ok(device.stats.rxPackets >= 2);
        assert.equal(device.stats.txPackets, 2);
        assert.equal(device.stats.txDropped, 0);
      } finally {
        if (ping !== undefined) {
          ping.kill();
          await ping.output();
        }
        device.close();
        await ns.destroy();
      }
    },
  });
}

Deno.test({
  name: "TapDevice: a superframe is cut in software without offload, written whole with it" +
    ROOT_ONLY,
  ignore: !IS_ROOT,
  async fn() {
    for (const offload of [false, true]) {
      const { device, ns } = await tapInNamespace(offload);
      try {
        const before = await ns.counters(device.name);
        const packet = tcpSuperframe({
          dstMac: TAP_MAC,
          srcMac: PEER_MAC,
          src: PEER_IP,
          dst: ipv4("10.201.0.1"),
          payload: 4000,
          gsoSize: 1448,
        });
        assert.equal(device.write(packet), true);
        const after = await ns.counters(device.name);
        // The kernel counts what it received from the TAP: 3 frames, or 1 superframe.
        assert.equal(after.rxPackets - before.rxPackets, offload ? 1 : 3, `offload ${offload}`);
        assert.equal(device.stats.txSegmented, offload ? 0 : 1);
        assert.equal(device.stats.txPackets, offload ? 1 : 3);
      } finally {
        device.close();
        await ns.destroy();
      }
    }
  },
});

Deno.test({
  name: "TapDevice: a packet the kernel refuses is dropped and counted, not thrown" + ROOT_ONLY,
  ignore: !IS_ROOT,
  async fn() {
    const { device, ns } = await tapInNamespace(true);
    try {
      // GSO TCPv4 asked for, but hdr_len and csum_start lie beyond the packet: EINVAL.
      const bad = new Uint8Array(VNET_HDR_LEN + 60);
      bad.set([1, 1, 200, 0, 0x88, 5, 250, 0, 16, 0]);
      assert.equal(device.write(bad), false);
      assert.equal(device.stats.txDropped, 1);
    } finally {
      device.close();
      await ns.destroy();
    }
  },
});

Deno.test({
  name: "TapDevice.read resolves 0 when its signal aborts during a wait" + ROOT_ONLY,
  ignore: !IS_ROOT,
  async fn() {
    const device = TapDevice.open({ name: uniqueIfName("w"), mtu: 1500, offload: false });
    try {
      // Down, the interface gets nothing from the kernel (no IPv6 chatter): only the abort
      // can end the read.
      await run(["ip", "link", "set", device.name, "down"]);
      // Frames the kernel queued while the interface was up (IPv6 chatter) are drained first.
      while (await device.read(new PacketBatch(4), AbortSignal.timeout(50)) > 0) { /* drain */ }
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 20);
      const started = performance.now();
      const n = await device.read(new PacketBatch(4), controller.signal);
      assert.equal(n, 0);
      assert.ok(performance.now() - started < 1000);
    } finally {
      device.close();
    }
  },
});
