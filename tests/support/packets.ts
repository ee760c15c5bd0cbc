/**
 * Hand-built Ethernet frames for device tests: ARP, ICMP echo and a TCP superframe, with
 * offsets counted from the start of the Ethernet header.
 *
 * @module
 */

import { writeVnetHeader } from "../../agent/device/vnet_header.ts";

/** EtherType of ARP. */
export const ETHERTYPE_ARP = 0x0806;
/** EtherType of IPv4. */
export const ETHERTYPE_IPV4 = 0x0800;

/** "10.1.2.3" as 4 bytes. */
export function ipv4(text: string): Uint8Array {
  return new Uint8Array(text.split(".").map(Number));
}

/** "02:00:00:00:00:01" as 6 bytes. */
export function mac(text: string): Uint8Array {
  return new Uint8Array(text.split(":").map((h) => parseInt(h, 16)));
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function u16(frame: Uint8Array, at: number): number {
  return (frame[at] << 8) | frame[at + 1];
}

/** The EtherType of `frame`. */
export function etherTypeOf(frame: Uint8Array): number {
  return u16(frame, 12);
}

/** True for a broadcast ARP request asking who has `target`. */
export function isArpRequestFor(frame: Uint8Array, target: Uint8Array): boolean {
  return frame.length >= 42 && etherTypeOf(frame) === ETHERTYPE_ARP &&
    frame.subarray(0, 6).every((b) => b === 0xff) && u16(frame, 20) === 1 &&
    equal(frame.subarray(38, 42), target);
}

/** The ARP reply "`ip` is at `hw`" to the request `request`. */
export function arpReply(request: Uint8Array, hw: Uint8Array, ip: Uint8Array): Uint8Array {
  const asker = request.subarray(22, 28);
  const askerIp = request.subarray(28, 32);
  const reply = new Uint8Array(42);
  reply.set(asker, 0);
  reply.set(hw, 6);
  reply.set([0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 2], 12);
  reply.set(hw, 22);
  reply.set(ip, 28);
  reply.set(asker, 32);
  reply.set(askerIp, 38);
  return reply;
}

/** True for an IPv4 ICMP echo request to `dst` sent to the MAC `dstMac`. */
export function isEchoRequestTo(frame: Uint8Array, dstMac: Uint8Array, dst: Uint8Array): boolean {
  if (frame.length < 42 || etherTypeOf(frame) !== ETHERTYPE_IPV4) return false;
  const ihl = (frame[14] & 0x0f) * 4;
  return equal(frame.subarray(0, 6), dstMac) && frame[23] === 1 &&
    equal(frame.subarray(30, 34), dst) && frame[14 + ihl] === 8;
}

/** The echo reply to the echo request `request` (addresses swapped, checksum redone). */
export function echoReply(request: Uint8Array): Uint8Array {
  const reply = request.slice();
  reply.set(request.subarray(6, 12), 0);
  reply.set(request.subarray(0, 6), 6);
  reply.set(request.subarray(30, 34), 26);
  reply.set(request.subarray(26, 30), 30);
  const icmp = 14 + (request[14] & 0x0f) * 4;
  const ipEnd = 14 + u16(request, 16);
  reply[icmp] = 0;
  reply[icmp + 2] = 0;
  reply[icmp + 3] = 0;
  const sum = checksum(reply.subarray(icmp, ipEnd), 0);
  reply[icmp + 2] = sum >> 8;
  reply[icmp + 3] = sum & 0xff;
  return reply;
}

function onesSum(bytes: Uint8Array, initial: number): number {
  let sum = initial;
  for (let i = 0; i + 1 < bytes.length; i += 2) sum += (bytes[i] << 8) | bytes[i + 1];
  if (bytes.length % 2 === 1) sum += bytes[bytes.length - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

function checksum(bytes: Uint8Array, initial: number): number {
  return ~onesSum(bytes, initial) & 0xffff;
}

/** Addresses and sizes of {@linkcode tcpSuperframe}. */
export interface SuperframeSpec {
  dstMac: Uint8Array;
  srcMac: Uint8Array;
  src: Uint8Array;
  dst: Uint8Array;
  /** TCP payload bytes. */
  payload: number;
  /** Payload bytes per segment. */
  gsoSize: number;
}

/**
 * A TCPv4 GSO superframe as a TAP with TSO hands it over: virtio-net header asking for
 * segmentation and checksum completion, the TCP checksum field holding the pseudo-header sum.
 */
export function tcpSuperframe(spec: SuperframeSpec): Uint8Array {
  const packet = new Uint8Array(10 + 14 + 20 + 20 + spec.payload);
  writeVnetHeader(packet, {
    flags: 1,
    gsoType: 1,
    hdrLen: 54,
    gsoSize: spec.gsoSize,
    csumStart: 34,
    csumOffset: 16,
  });
  const f = packet.subarray(10);
  f.set(spec.dstMac, 0);
  f.set(spec.srcMac, 6);
  f.set([0x08, 0x00], 12);
  const ipLen = 40 + spec.payload;
  f.set([0x45, 0, ipLen >> 8, ipLen & 0xff, 0, 1, 0x40, 0, 64, 6, 0, 0], 14);
  f.set(spec.src, 26);
  f.set(spec.dst, 30);
  const ipSum = checksum(f.subarray(14, 34), 0);
  f.set([ipSum >> 8, ipSum & 0xff], 24);
  // ports 40000 -> 5001, seq 1, ack 1, data offset 5, flags ACK|PSH, window 512
  f.set([0x9c, 0x40, 0x13, 0x89, 0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x18, 0x02, 0x00], 34);
  for (let i = 0; i < spec.payload; i++) f[54 + i] = i & 0xff;
  const tcpLen = 20 + spec.payload;
  const pseudo = onesSum(f.subarray(26, 34), 6 + tcpLen);
  f.set([pseudo >> 8, pseudo & 0xff], 50);
  return packet;
}
