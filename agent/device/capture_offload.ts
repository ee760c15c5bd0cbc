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
import { VNET_HDR_LEN } from "../packet/layout.ts";
import { IPPROTO_TCP, IPPROTO_UDP, L3L4Headers, parseL3L4 } from "../packet/l3l4.ts";
import {
  VNET_F_NEEDS_CSUM,
  VNET_GSO_NONE,
  VNET_GSO_TCPV4,
  VNET_GSO_TCPV6,
  writeVnetHeader,
} from "./vnet_header.ts";

/** Where the captured frame's headers are; reused for every frame. */
const headers = new L3L4Headers();

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
  const h = parseL3L4(packet, f, headers);
  if (h === null) return false;
  const { l3, l4, l4Proto: proto, l4HeaderLen } = h;
  // The kernel sent what the IP length says: it must fit in the capture, and the L4 header
  // in it (what lies beyond is Ethernet padding, outside the checksum).
  if (h.ipEnd > packet.length || l4 + l4HeaderLen > h.ipEnd) return false;
  const ipv4 = h.ipVersion === 4;
  const l4Len = h.ipEnd - l4;
  // IPv4 UDP with checksum 0 means "no checksum": keep it that way.
  if (proto === IPPROTO_UDP && ipv4 && packet[l4 + 6] === 0 && packet[l4 + 7] === 0) return false;
  const csumOffset = proto === IPPROTO_TCP ? 16 : 6;
  const pseudo = (ipv4 ? sum16(packet, l3 + 12, l3 + 20) : sum16(packet, l3 + 8, l3 + 40)) +
    proto + l4Len;
  const gsoType = ipv4 ? VNET_GSO_TCPV4 : VNET_GSO_TCPV6;
  const partial = fold(pseudo);
  packet[l4 + csumOffset] = partial >> 8;
  packet[l4 + csumOffset + 1] = partial & 0xff;
  const ipHeaderLen = l4 - l3;
  const oversized = proto === IPPROTO_TCP && ipHeaderLen + l4Len > mtu;
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
