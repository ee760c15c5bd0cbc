/**
 * Helper of pcap_device_test.ts, run inside the test's namespace (libpcap captures in the
 * namespace of its process). A PcapDevice sits on end A of a veth pair and a raw capture on
 * end B plays the VM; the probe prints one JSON object of what each side saw.
 *
 *     usage: pcap_device_probe.ts IFACE_A IFACE_B
 *
 * @module
 */

import { PcapHandle } from "../../../ffi/mod.ts";
import { PacketBatch } from "../../../agent/device/device.ts";
import { VNET_HDR_LEN } from "../../../agent/packet/layout.ts";
import { PcapDevice } from "../../../agent/device/pcap_device.ts";
import { ipv4, mac, tcpSuperframe } from "../../support/packets.ts";

const [ifA, ifB] = Deno.args;
const PROTO = 0x88b5;

function frame(marker: string): Uint8Array {
  const f = new Uint8Array(60);
  f.fill(0xff, 0, 6);
  f.set([0x02, 0, 0, 0, 0, 0x0b], 6);
  f.set([PROTO >> 8, PROTO & 0xff], 12);
  f.set(new TextEncoder().encode(marker), 14);
  return f;
}

/** Lengths of the frames the VM side captures within `ms` (stops early at `want`). */
async function capturedLengths(vm: PcapHandle, want: number, ms: number): Promise<number[]> {
  const lengths: number[] = [];
  const buf = new Uint8Array(65_536);
  const deadline = Date.now() + ms;
  while (lengths.length < want && Date.now() < deadline) {
    const n = vm.next(buf, 0);
    if (n > 0) lengths.push(n);
    else await vm.waitReadable(20);
  }
  return lengths;
}

const device = PcapDevice.open({ iface: ifA, mtu: 1500, filter: `ether proto ${PROTO}` });
const vm = PcapHandle.open(ifB, {
  snaplen: 65_535,
  promisc: true,
  immediate: true,
  inboundOnly: true,
  filter: `ether proto ${PROTO} or tcp`,
});
try {
  // VM -> device: the frame lands at offset 10 behind a zeroed header.
  const sent = frame("vm-to-device");
  vm.inject(sent);
  const batch = new PacketBatch(4);
  const n = await device.read(batch, AbortSignal.timeout(3000));
  const packet = batch.packet(0);
  const readBack = {
    count: n,
    length: packet.length,
    headerZero: packet.subarray(0, VNET_HDR_LEN).every((b) => b === 0),
    frameEqual: packet.subarray(VNET_HDR_LEN).every((b, i) => b === sent[i]),
  };

  // device -> VM: a plain packet is injected as it is; a superframe as MTU-sized segments.
  const plain = new Uint8Array(VNET_HDR_LEN + 60);
  plain.set(frame("device-to-vm"), VNET_HDR_LEN);
  const plainWritten = device.write(plain);
  const superWritten = device.write(tcpSuperframe({
    dstMac: mac("02:00:00:00:00:0b"),
    srcMac: mac("02:00:00:00:00:0a"),
    src: ipv4("10.202.0.1"),
    dst: ipv4("10.202.0.2"),
    payload: 4000,
    gsoSize: 1448,
  }));
  const atVm = await capturedLengths(vm, 4, 3000);

  // The device captures inbound only: its own injections never come back to it.
  const echoed = await device.read(batch, AbortSignal.timeout(300));

  console.log(JSON.stringify({
    readBack,
    plainWritten,
    superWritten,
    atVm,
    echoed,
    stats: device.stats,
    captureStats: device.captureStats(),
  }));
} finally {
  device.close();
  vm.close();
}
