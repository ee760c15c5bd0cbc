/**
 * Where the IP and the TCP/UDP headers of a packet are: the one parser that the software
 * segmentation (`device/segment.ts`) and the capture offload marking (`device/capture_offload.ts`)
 * share.
 *
 *     [Ethernet 14][802.1Q 4, optional][IPv4 IHL*4 | IPv6 40][TCP doff*4 | UDP 8][payload]
 *     ^ethOffset    l3 ------------------^                    ^l4
 *
 * Every bound is checked against the packet's length, never against the lengths the headers
 * claim: the IP length field is only reported (`ipEnd`), because its users trust it differently
 * (a capture must fit inside it, a TAP superframe is taken as it is). IPv6 extension headers
 * are not walked, and fragments are refused: neither user can do anything with them.
 *
 * It never throws and never allocates: the result goes into an object the caller reuses.
 *
 * @module
 */

import { ETH_HLEN, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_VLAN, VLAN_HLEN } from "./layout.ts";

/** IP protocol number of TCP. */
export const IPPROTO_TCP = 6;
/** IP protocol number of UDP. */
export const IPPROTO_UDP = 17;

const IPV4_MIN_HLEN = 20;
const IPV6_HLEN = 40;
const TCP_MIN_HLEN = 20;
const UDP_HLEN = 8;

/**
 * Why {@linkcode parseL3L4} found no TCP or UDP header (`"ok"` when it did):
 *
 * - `truncated`: a header runs past the end of the packet;
 * - `not-ip`: the EtherType (after at most one 802.1Q tag) is neither IPv4 nor IPv6;
 * - `bad-ip-header`: the IP version does not match the EtherType, or the IPv4 IHL is below 5;
 * - `fragment`: an IPv4 fragment (MF set or an offset), whose L4 header is not there to parse;
 * - `not-tcp-udp`: another protocol, or an IPv6 extension header, follows the IP header;
 * - `bad-tcp-header`: the TCP data offset is below 5.
 */
export type L3L4Reason =
  | "ok"
  | "truncated"
  | "not-ip"
  | "bad-ip-header"
  | "fragment"
  | "not-tcp-udp"
  | "bad-tcp-header";

/**
 * The headers {@linkcode parseL3L4} found, as offsets into the packet it was given. One object
 * is reused for every packet (its shape never changes, so the parse allocates nothing); read
 * what you need before parsing the next packet into it.
 */
export class L3L4Headers {
  /** Offset of the IP header (after the Ethernet header and an optional 802.1Q tag). */
  l3 = 0;
  /** 4 or 6. */
  ipVersion = 0;
  /** Bytes of the IP header: IHL * 4 for IPv4, 40 for IPv6. */
  ipHeaderLen = 0;
  /**
   * Where the IP packet ends by its own length field (IPv4 total length, IPv6 payload length).
   * Not checked against the packet: a user that trusts it checks it.
   */
  ipEnd = 0;
  /** {@linkcode IPPROTO_TCP} or {@linkcode IPPROTO_UDP}. */
  l4Proto = 0;
  /** Offset of the TCP or UDP header: `l3 + ipHeaderLen`. */
  l4 = 0;
  /** Bytes of the L4 header: the TCP data offset * 4, or 8 for UDP. */
  l4HeaderLen = 0;
  /** `"ok"` after a successful parse, otherwise why it failed. */
  reason: L3L4Reason = "ok";
}

/**
 * Finds the IP and TCP/UDP headers of the Ethernet frame that starts at `ethOffset` of `packet`
 * (the agent's packets: `VNET_HDR_LEN`; never negative). Returns `out`, filled in, or null with
 * `out.reason` saying why (its other fields are then meaningless). On success every header lies
 * inside the packet: `ethOffset < l3 < l4 < l4 + l4HeaderLen <= packet.length`.
 *
 * @example A UDP/IPv4 frame behind the virtio-net header
 * ```ts
 * import { IPPROTO_UDP, L3L4Headers, parseL3L4 } from "./l3l4.ts";
 * const p = new Uint8Array(10 + 14 + 20 + 8);
 * p[22] = 0x08; // EtherType IPv4
 * p.set([0x45, 0, 0, 28, 0, 0, 0, 0, 64, IPPROTO_UDP], 24); // IHL 5, total length 28, UDP
 * const h = parseL3L4(p, 10, new L3L4Headers());
 * if (h === null || h.l4 !== 44 || h.l4HeaderLen !== 8 || h.ipEnd !== 52) throw new Error();
 * p[24] = 0x44; // IHL 4: too short for an IPv4 header
 * const out = new L3L4Headers();
 * if (parseL3L4(p, 10, out) !== null || out.reason !== "bad-ip-header") throw new Error();
 * ```
 */
export function parseL3L4(
  packet: Uint8Array,
  ethOffset: number,
  out: L3L4Headers,
): L3L4Headers | null {
  const end = packet.length;
  let l3 = ethOffset + ETH_HLEN;
  if (l3 > end) return fail(out, "truncated");
  let etherType = read16(packet, l3 - 2);
  if (etherType === ETHERTYPE_VLAN) {
    l3 += VLAN_HLEN;
    if (l3 > end) return fail(out, "truncated");
    etherType = read16(packet, l3 - 2);
  }
  let ipHeaderLen: number;
  let proto: number;
  let ipEnd: number;
  if (etherType === ETHERTYPE_IPV4) {
    if (l3 + IPV4_MIN_HLEN > end) return fail(out, "truncated");
    if (packet[l3] >> 4 !== 4) return fail(out, "bad-ip-header");
    ipHeaderLen = (packet[l3] & 0x0f) * 4;
    if (ipHeaderLen < IPV4_MIN_HLEN) return fail(out, "bad-ip-header");
    if (l3 + ipHeaderLen > end) return fail(out, "truncated");
    // MF set or a fragment offset.
    if ((read16(packet, l3 + 6) & 0x3fff) !== 0) return fail(out, "fragment");
    proto = packet[l3 + 9];
    ipEnd = l3 + read16(packet, l3 + 2);
    out.ipVersion = 4;
  } else if (etherType === ETHERTYPE_IPV6) {
    if (l3 + IPV6_HLEN > end) return fail(out, "truncated");
    if (packet[l3] >> 4 !== 6) return fail(out, "bad-ip-header");
    ipHeaderLen = IPV6_HLEN;
    proto = packet[l3 + 6];
    ipEnd = l3 + IPV6_HLEN + read16(packet, l3 + 4);
    out.ipVersion = 6;
  } else {
    return fail(out, "not-ip");
  }
  const l4 = l3 + ipHeaderLen;
  let l4HeaderLen: number;
  if (proto === IPPROTO_TCP) {
    if (l4 + TCP_MIN_HLEN > end) return fail(out, "truncated");
    l4HeaderLen = (packet[l4 + 12] >> 4) * 4;
    if (l4HeaderLen < TCP_MIN_HLEN) return fail(out, "bad-tcp-header");
    if (l4 + l4HeaderLen > end) return fail(out, "truncated");
  } else if (proto === IPPROTO_UDP) {
    if (l4 + UDP_HLEN > end) return fail(out, "truncated");
    l4HeaderLen = UDP_HLEN;
  } else {
    return fail(out, "not-tcp-udp");
  }
  out.l3 = l3;
  out.ipHeaderLen = ipHeaderLen;
  out.ipEnd = ipEnd;
  out.l4Proto = proto;
  out.l4 = l4;
  out.l4HeaderLen = l4HeaderLen;
  out.reason = "ok";
  return out;
}

function fail(out: L3L4Headers, reason: L3L4Reason): null {
  out.reason = reason;
  return null;
}

function read16(bytes: Uint8Array, at: number): number {
  return (bytes[at] << 8) | bytes[at + 1];
}
