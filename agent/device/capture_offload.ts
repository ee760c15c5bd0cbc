/**
 * Describes a frame captured by libpcap in virtio-net terms.
 *
 * A capture on a VM's veth sees what the VM's kernel sent before any checksum was computed:
 * TCP and UDP frames carry only the pseudo-header part of their checksum (CHECKSUM_PARTIAL),
 * and with TSO on, a TCP "frame" can be a 64 KB superframe. libpcap does not say which frames
 * are like that. Written as they are on the far side, the partial checksums are wrong and the
 * superframes too large, so TCP through a pcap-attached host would stall.
 *
 * The fix is to claim the offload explicitly for every TCP/UDP frame: put the pseudo-header
 * sum in the checksum field, set NEEDS_CSUM with csum_start/csum_offset, and mark frames
 * longer than the MTU as GSO superframes with an MSS that fits the MTU. Whoever finally writes
 * the packet finishes it: an offloading TAP lets the kernel do it, a plain device calls
 * `toPlainFrames`. Recomputing is correct whether or not the captured checksum was complete,
 * and costs no payload scan here.
 *
 * @module
 */

import { fold, sum16 } from "./checksum.ts";
import { VNET_HDR_LEN } from "./device.ts";
import {
  VNET_F_NEEDS_CSUM,
  VNET_GSO_NONE,
  VNET_GSO_TCPV4,
  VNET_GSO_TCPV6,
  writeVnetHeader,
} from "./vnet_header.ts";

const ETHERTYPE_VLAN = 0x8100;
const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const TCP = 6;
const UDP = 17;

/**
 * Rewrites the 10-byte header (and the L4 checksum field) of `packet` so that a captured TCP
 * or UDP frame is described as "checksum to complete", and an oversized TCP frame as a GSO
 * superframe. Other frames (ARP, ICMP, fragments, IPv6 with extension headers) are left
 * untouched with a zero header. Returns true when the packet was marked.
 *
 * @example A UDP/IPv4 frame gets NEEDS_CSUM at the UDP checksum
 * ```ts
 * import { markCapturedOffloads } from "./capture_offload.ts";
 * import { readVnetHeader } from "./vnet_header.ts";
 * const p = new Uint8Array(10 + 14 + 20 + 8 + 4);
 * p[22] = 0x08; // EtherType IPv4
 * p.set([0x45, 0, 0, 32, 0, 0, 0, 0, 64, 17], 24); // IHL 5, length 32, UDP
 * p.set([10, 0, 0, 1, 10, 0, 0, 2], 36);
 * p.set([0, 53, 0, 53, 0, 12, 0x12, 0x34], 44); // ports, length, a checksum
 * if (!markCapturedOffloads(p, 1500)) throw new Error("not marked");
 * const h = readVnetHeader(p);
 * if (h.flags !== 1 || h.csumStart !== 34 || h.csumOffset !== 6) throw new Error("header");
 * ```
 */
export function markCapturedOffloads(packet: Uint8Array, mtu: number): boolean {
  const f = VNET_HDR_LEN; // frame start
  const len = packet.length;
  let l3 = f + 14;
  if (len < l3) return false;
  let etherType = (packet[f + 12] << 8) | packet[f + 13];
  if (etherType === ETHERTYPE_VLAN) {
    if (len < l3 + 4) return false;
    etherType = (packet[f + 16] << 8) | packet[f + 17];
    l3 += 4;
  }
  let l4: number;
  let proto: number;
  let l4Len: number;
  let pseudo: number;
  let gsoType: number;
  if (etherType === ETHERTYPE_IPV4) {
    if (len < l3 + 20 || packet[l3] >> 4 !== 4) return false;
    const ihl = (packet[l3] & 0x0f) * 4;
    const total = (packet[l3 + 2] << 8) | packet[l3 + 3];
    const fragment = ((packet[l3 + 6] & 0x3f) << 8) | packet[l3 + 7]; // MF bit + offset
    if (ihl < 20 || fragment !== 0 || total < ihl || l3 + total > len) return false;
    proto = packet[l3 + 9];
    l4 = l3 + ihl;
    l4Len = total - ihl;
    pseudo = sum16(packet, l3 + 12, l3 + 20) + proto + l4Len;
    gsoType = VNET_GSO_TCPV4;
  } else if (etherType === ETHERTYPE_IPV6) {
    if (len < l3 + 40 || packet[l3] >> 4 !== 6) return false;
    proto = packet[l3 + 6];
    l4 = l3 + 40;
    l4Len = (packet[l3 + 4] << 8) | packet[l3 + 5];
    if (l4 + l4Len > len) return false;
    pseudo = sum16(packet, l3 + 8, l3 + 40) + proto + l4Len;
    gsoType = VNET_GSO_TCPV6;
  } else {
    return false;
  }
  let csumOffset: number;
  let l4HeaderLen: number;
  if (proto === TCP) {
    if (l4Len < 20) return false;
    l4HeaderLen = (packet[l4 + 12] >> 4) * 4;
    if (l4HeaderLen < 20 || l4HeaderLen > l4Len) return false;
    csumOffset = 16;
  } else if (proto === UDP) {
    if (l4Len < 8) return false;
    // IPv4 UDP with checksum 0 means "no checksum": keep it that way.
    if (gsoType === VNET_GSO_TCPV4 && packet[l4 + 6] === 0 && packet[l4 + 7] === 0) return false;
    l4HeaderLen = 8;
    csumOffset = 6;
  } else {
    return false;
  }
  const partial = fold(pseudo);
  packet[l4 + csumOffset] = partial >> 8;
  packet[l4 + csumOffset + 1] = partial & 0xff;
  const ipHeaderLen = l4 - l3;
  const oversized = proto === TCP && ipHeaderLen + l4Len > mtu;
  writeVnetHeader(packet, {
    flags: VNET_F_NEEDS_CSUM,
    gsoType: oversized ? gsoType : VNET_GSO_NONE,
    hdrLen: oversized ? l4 - f + l4HeaderLen : 0,
    gsoSize: oversized ? mtu - ipHeaderLen - l4HeaderLen : 0,
    csumStart: l4 - f,
    csumOffset,
  });
  return true;
}
