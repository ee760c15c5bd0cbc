/**
 * Software fallback for offloads: turns any agent packet into plain frames that a device
 * without offloads (libpcap injection, a TAP without IFF_VNET_HDR) can take.
 *
 * A TAP with TSO hands us GSO superframes of up to ~64 KiB whose TCP checksum holds only the
 * pseudo-header partial sum. They cross the overlay whole (one packet, one send); only the
 * device that finally writes one and cannot take it cuts it up here, as the kernel's
 * tcp_gso_segment would:
 *
 *     superframe: [vnet hdr][Eth (+802.1Q)][IPv4|IPv6][TCP][payload ....................]
 *     segments:   [zero hdr][Eth (+802.1Q)][IP'][TCP'][payload, gso_size bytes]   (xN)
 *
 * IP' has its length (and for IPv4, identification and header checksum) rewritten; TCP' has
 * its sequence number advanced, FIN/PSH only on the last segment, CWR only on the first, and
 * a full checksum.
 *
 * @module
 */

import { fold, sum16 } from "./checksum.ts";
import { ETH_HLEN, MAX_PACKET_BYTES, VNET_HDR_LEN } from "../packet/layout.ts";
import { IPPROTO_TCP, L3L4Headers, parseL3L4 } from "../packet/l3l4.ts";
import {
  isPlainPacket,
  readVnetHeader,
  VNET_GSO_ECN,
  VNET_GSO_NONE,
  VNET_GSO_TCPV4,
  VNET_GSO_TCPV6,
  type VnetHeader,
} from "./vnet_header.ts";

const TCP_FIN = 0x01;
const TCP_PSH = 0x08;
const TCP_CWR = 0x80;

/**
 * The one buffer every segment is built in. It is allocated on first use and grown only for a
 * packet larger than {@linkcode MAX_PACKET_BYTES}; a segment is never longer than the packet it
 * comes from, so one buffer of the packet's size is always enough.
 */
let scratch: Uint8Array | undefined;
/** True while a call emits from `scratch`; a call re-entered from `emit` must not reuse it. */
let scratchInUse = false;
/** Where the superframe's headers are; read into locals before anything is emitted. */
const headers = new L3L4Headers();

/**
 * Emits `packet` as plain frames (each with a zeroed virtio-net header in front), completing a
 * pending checksum or segmenting a TCP superframe in software. Devices that cannot take
 * offloaded packets call it from `write`, so that the rest of the agent can pass superframes
 * around whole.
 *
 * - A plain packet (no GSO, no NEEDS_CSUM) is emitted as it is: `emit(packet)`.
 * - NEEDS_CSUM without GSO: the checksum from csum_start to the end is completed at
 *   csum_start + csum_offset (0 is stored as 0xffff, which UDP requires).
 * - GSO TCPv4 / TCPv6 (ECN or not), with or without one 802.1Q tag: cut into segments of
 *   gso_size payload bytes, or fewer when `mtu` asks for it.
 *
 * The headers are parsed from the frame itself; hdr_len is only checked to lie inside it, as
 * the kernel treats it as a hint too. `packet` is never modified.
 *
 * Except for a plain packet, the frame given to `emit` is a view into one scratch buffer that
 * is reused for the next segment and the next call: it is valid only during that `emit` call,
 * and whoever keeps it must copy it. Nothing is allocated per segment.
 *
 * @param packet virtio-net header + Ethernet frame
 * @param mtu IP MTU of the device that takes the frames (`Device.mtu`); segments
 *   carry at most this many bytes after the Ethernet (and VLAN) header
 * @param emit called once per frame, in order; an exception from it propagates
 * @returns false, having emitted nothing, when the packet is malformed or asks for something we
 *   do not do (UDP GSO, an unknown GSO type, IPv6 extension headers, a fragment, an MTU too
 *   small for the headers); it never throws for bad input
 *
 * @example Cutting a 10-byte TCP payload with gso_size 4 into 3 segments
 * ```ts
 * import { toPlainFrames } from "./segment.ts";
 * import { writeVnetHeader } from "./vnet_header.ts";
 * const packet = new Uint8Array(10 + 14 + 20 + 20 + 10);
 * const vnet = { flags: 1, gsoType: 1, hdrLen: 54, gsoSize: 4, csumStart: 34, csumOffset: 16 };
 * writeVnetHeader(packet, vnet);
 * packet.set([0x08, 0x00], 10 + 12); // EtherType IPv4
 * packet.set([0x45, 0, 0, 50, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2], 24);
 * packet.set([0x30, 0x39, 0x00, 0x50, 0, 0, 0, 100, 0, 0, 0, 0, 0x50, 0x19], 44); // ACK|PSH|FIN
 * const lengths: number[] = [];
 * const ok = toPlainFrames(packet, 1500, (frame) => lengths.push(frame.length));
 * if (!ok || lengths.join() !== "68,68,66") throw new Error(`got ${lengths}`);
 * ```
 */
export function toPlainFrames(
  packet: Uint8Array,
  mtu: number,
  emit: (frame: Uint8Array) => void,
): boolean {
  if (packet.length < VNET_HDR_LEN) return false;
  if (isPlainPacket(packet)) {
    emit(packet);
    return true;
  }
  const header = readVnetHeader(packet);
  const gsoType = header.gsoType & ~VNET_GSO_ECN;
  if (gsoType !== VNET_GSO_NONE && gsoType !== VNET_GSO_TCPV4 && gsoType !== VNET_GSO_TCPV6) {
    return false;
  }
  const out = acquireScratch(packet.length);
  try {
    return gsoType === VNET_GSO_NONE
      ? completeChecksum(packet, header, out, emit)
      : segmentTcp(packet, header, mtu, out, emit);
  } finally {
    if (out === scratch) scratchInUse = false;
  }
}

function acquireScratch(bytes: number): Uint8Array {
  // Re-entered from an emit callback: the outer call still emits from `scratch`. Rare enough
  // that a fresh buffer is the simple, correct answer.
  if (scratchInUse) return new Uint8Array(bytes);
  if (scratch === undefined || scratch.length < bytes) {
    scratch = new Uint8Array(Math.max(bytes, MAX_PACKET_BYTES));
  }
  scratchInUse = true;
  return scratch;
}

function completeChecksum(
  packet: Uint8Array,
  header: VnetHeader,
  out: Uint8Array,
  emit: (frame: Uint8Array) => void,
): boolean {
  const frameLen = packet.length - VNET_HDR_LEN;
  const start = VNET_HDR_LEN + header.csumStart;
  const field = start + header.csumOffset;
  if (field + 2 > packet.length || frameLen < ETH_HLEN) return false;
  out.fill(0, 0, VNET_HDR_LEN);
  out.set(packet.subarray(VNET_HDR_LEN), VNET_HDR_LEN);
  // The field holds the partial (pseudo-header) sum, so the bytes are summed as they are.
  const csum = ~fold(sum16(out, start, packet.length)) & 0xffff;
  write16(out, field, csum === 0 ? 0xffff : csum);
  emit(out.subarray(0, packet.length));
  return true;
}

function segmentTcp(
  packet: Uint8Array,
  header: VnetHeader,
  mtu: number,
  out: Uint8Array,
  emit: (frame: Uint8Array) => void,
): boolean {
  // Offsets below are into `packet` (and the same offsets into `out`): header included.
  const end = packet.length;
  if (header.gsoSize === 0 || VNET_HDR_LEN + header.hdrLen > end) return false;
  // A fragment cannot be segmented, and IPv6 extension headers are not supported: TCP must
  // follow the fixed header. The parser refuses both.
  const h = parseL3L4(packet, VNET_HDR_LEN, headers);
  const ipv4 = (header.gsoType & ~VNET_GSO_ECN) === VNET_GSO_TCPV4;
  if (h === null || h.ipVersion !== (ipv4 ? 4 : 6) || h.l4Proto !== IPPROTO_TCP) return false;
  // Locals, not `headers`: an `emit` that re-enters toPlainFrames parses into it again.
  const l3 = h.l3;
  const l4 = h.l4;
  const ipHdrLen = h.ipHeaderLen;
  const tcpHdrLen = h.l4HeaderLen;
  const payloadStart = l4 + tcpHdrLen;
  const payloadLen = end - payloadStart;

  // NaN-safe: a non-numeric MTU fails the `>= 1` test.
  const segSize = Math.floor(Math.min(header.gsoSize, mtu - ipHdrLen - tcpHdrLen));
  if (!(segSize >= 1)) return false;
  // The largest segment's IP length field must fit in 16 bits.
  const largest = Math.min(payloadLen, segSize) + tcpHdrLen + (ipv4 ? ipHdrLen : 0);
  if (largest > 0xffff) return false;

  out.fill(0, 0, VNET_HDR_LEN);
  out.set(packet.subarray(VNET_HDR_LEN, payloadStart), VNET_HDR_LEN);
  const seq0 = read32(packet, l4 + 4);
  const flags0 = packet[l4 + 13];
  const ipId0 = ipv4 ? read16(packet, l3 + 4) : 0;
  const addressSum = ipv4 ? sum16(packet, l3 + 12, l3 + 20) : sum16(packet, l3 + 8, l3 + 40);
  const segments = payloadLen === 0 ? 1 : Math.ceil(payloadLen / segSize);

  for (let i = 0; i < segments; i++) {
    const from = payloadStart + i * segSize;
    const len = Math.min(segSize, end - from);
    const tcpLen = tcpHdrLen + len;
    const segEnd = payloadStart + len;

    if (ipv4) {
      write16(out, l3 + 2, ipHdrLen + tcpLen);
      write16(out, l3 + 4, (ipId0 + i) & 0xffff);
      write16(out, l3 + 10, 0);
      write16(out, l3 + 10, ~fold(sum16(out, l3, l4)) & 0xffff);
    } else {
      write16(out, l3 + 4, tcpLen);
    }

    write32(out, l4 + 4, seq0 + i * segSize);
    let flags = flags0;
    if (i !== segments - 1) flags &= ~(TCP_FIN | TCP_PSH);
    if (i !== 0) flags &= ~TCP_CWR;
    out[l4 + 13] = flags;
    write16(out, l4 + 16, 0);
    out.set(packet.subarray(from, from + len), payloadStart);
    const sum = addressSum + IPPROTO_TCP + tcpLen + sum16(out, l4, segEnd);
    write16(out, l4 + 16, ~fold(sum) & 0xffff);

    emit(out.subarray(0, segEnd));
  }
  return true;
}

/** The big-endian 16-bit word at `at`. */
function read16(bytes: Uint8Array, at: number): number {
  return (bytes[at] << 8) | bytes[at + 1];
}

function read32(bytes: Uint8Array, at: number): number {
  return ((bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3]) >>> 0;
}

function write16(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value >>> 8;
  bytes[at + 1] = value;
}

/** Writes `value` modulo 2^32, big-endian. */
function write32(bytes: Uint8Array, at: number, value: number): void {
  const v = value >>> 0;
  bytes[at] = v >>> 24;
  bytes[at + 1] = v >>> 16;
  bytes[at + 2] = v >>> 8;
  bytes[at + 3] = v;
}
