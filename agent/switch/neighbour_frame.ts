/**
 * Views over the two neighbour protocols the proxy suppresses: ARP (IPv4) and IPv6 neighbour
 * discovery (ICMPv6 neighbour solicitation and advertisement, RFC 4861), and the replies the
 * proxy builds in their owners' name.
 *
 *     packet ──parseNeighbour──> NeighbourMessage (who claims which IP, who asks for which)
 *     request + owner ──ReplyBuilder──> ARP reply | neighbour advertisement (one scratch buffer)
 *
 * Every read is bounds-checked against the packet's length and the IPv6 payload length, so any
 * bytes at all parse to "none", "malformed" or a message, never an exception. Parsing reuses
 * the caller's message object: ARP allocates nothing; ND allocates the 8-character keys of its
 * two IPv6 addresses (neighbour traffic is a sliver of all frames; other IPv6 frames are
 * rejected on their next-header byte before any key is made).
 *
 * The checksum of an incoming ICMPv6 message is not verified: a TAP may hand us a partial
 * (offloaded) one, the link under it is authenticated, and learning rests on the frame's
 * source and port, not on the checksum.
 *
 * @module
 */

import { DST_OFFSET, SRC_OFFSET, VNET_HDR_LEN } from "../packet/layout.ts";
import { BROADCAST_MAC, isGroupMac, type Mac, macAt, writeMac } from "./ethernet.ts";

/** An IP address as a table key: IPv4 as a 32-bit number, IPv6 as 8 UTF-16 code units. */
export type IpKey = number | string;

/** EtherType of ARP. */
export const ETHERTYPE_ARP = 0x0806;
/** EtherType of IPv6. */
export const ETHERTYPE_IPV6 = 0x86dd;

const L3 = VNET_HDR_LEN + 14; // first byte after the Ethernet header
const ARP_LEN = 28;
const IP6_LEN = 40;
const ICMP = L3 + IP6_LEN; // ICMPv6 header, when the IPv6 header has no extension
const ND_LEN = 24; // type, code, checksum, flags/reserved, target
const NS = 135;
const NA = 136;
const OPT_SOURCE_LL = 1;
const OPT_TARGET_LL = 2;
const NA_ROUTER = 0x80;
const NA_SOLICITED = 0x40;
const NA_OVERRIDE = 0x20;

/** Length of the packets {@linkcode ReplyBuilder} makes. */
export const ARP_REPLY_LEN = L3 + ARP_LEN;
/** Length of a neighbour advertisement with its target link-layer option. */
export const ADVERT_LEN = ICMP + ND_LEN + 8;

/** What one ARP or ND frame says, as {@linkcode parseNeighbour} fills it. */
export interface NeighbourMessage {
  family: 4 | 6;
  /** ARP request or neighbour solicitation (else ARP reply or neighbour advertisement). */
  request: boolean;
  /** Sent to everyone who might own the target: broadcast ARP, NS to the solicited-node group. */
  toGroup: boolean;
  /** The IP this message binds to `claimMac` (ARP sender, NS source, NA target); null: none. */
  claimIp: IpKey | null;
  /** The MAC it binds (ARP sender hardware address, NS/NA link-layer option); null: absent. */
  claimMac: Mac | null;
  /** The IP asked for (ARP target, NS target); null for replies and advertisements. */
  targetIp: IpKey | null;
  /** The router flag of an advertisement; null when the message does not tell. */
  router: boolean | null;
}

/** A blank message to pass to {@linkcode parseNeighbour}. */
export function newNeighbourMessage(): NeighbourMessage {
  return {
    family: 4,
    request: false,
    toGroup: false,
    claimIp: null,
    claimMac: null,
    targetIp: null,
    router: null,
  };
}

function u16(p: Uint8Array, at: number): number {
  return (p[at] << 8) | p[at + 1];
}

function ipv4At(p: Uint8Array, at: number): number {
  return ((p[at] << 24) | (p[at + 1] << 16) | (p[at + 2] << 8) | p[at + 3]) >>> 0;
}

function ipv6At(p: Uint8Array, at: number): string {
  return String.fromCharCode(
    u16(p, at),
    u16(p, at + 2),
    u16(p, at + 4),
    u16(p, at + 6),
    u16(p, at + 8),
    u16(p, at + 10),
    u16(p, at + 12),
    u16(p, at + 14),
  );
}

function isZero(p: Uint8Array, at: number, n: number): boolean {
  for (let i = 0; i < n; i++) if (p[at + i] !== 0) return false;
  return true;
}

/**
 * Reads the ARP or ND message in `packet` (virtio-net header + frame) into `out`. "none": not
 * ARP, not an NS or NA (the usual case, decided on two or three bytes); "malformed": claims to
 * be one but breaks its format (truncated, bad lengths, hop limit not 255...).
 *
 * @example A broadcast ARP request from 10.0.0.1 for 10.0.0.2
 * ```ts
 * import { newNeighbourMessage, parseNeighbour } from "./neighbour_frame.ts";
 * const p = new Uint8Array(10 + 42);
 * p.fill(0xff, 10, 16); // broadcast
 * p.set([2, 0, 0, 0, 0, 1, 0x08, 0x06], 16); // source MAC, EtherType ARP
 * p.set([0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 0, 0, 1], 24); // request, sender
 * p.set([10, 0, 0, 2], 48); // target IP
 * const m = newNeighbourMessage();
 * if (parseNeighbour(p, m) !== "ok" || !m.request || !m.toGroup) throw new Error("parse");
 * if (m.claimIp !== 0x0a000001 || m.targetIp !== 0x0a000002) throw new Error("ips");
 * ```
 */
export function parseNeighbour(
  packet: Uint8Array,
  out: NeighbourMessage,
): "none" | "malformed" | "ok" {
  if (packet.length < L3) return "none";
  const type = u16(packet, L3 - 2);
  if (type === ETHERTYPE_ARP) return parseArp(packet, out);
  if (type !== ETHERTYPE_IPV6 || packet.length < ICMP + 1) return "none";
  if ((packet[L3] >> 4) !== 6 || packet[L3 + 6] !== 58) return "none"; // not ICMPv6 (or has extensions)
  const icmpType = packet[ICMP];
  if (icmpType !== NS && icmpType !== NA) return "none";
  return parseNd(packet, out, icmpType === NS);
}

function parseArp(p: Uint8Array, out: NeighbourMessage): "malformed" | "ok" {
  if (p.length < L3 + ARP_LEN) return "malformed";
  const op = u16(p, L3 + 6);
  if (
    u16(p, L3) !== 1 || u16(p, L3 + 2) !== 0x0800 || p[L3 + 4] !== 6 || p[L3 + 5] !== 4 ||
    (op !== 1 && op !== 2)
  ) return "malformed";
  const spa = ipv4At(p, L3 + 14);
  out.family = 4;
  out.request = op === 1;
  out.toGroup = out.request && macAt(p, DST_OFFSET) === BROADCAST_MAC;
  // 0.0.0.0 (a probe), multicast and broadcast senders bind nothing.
  out.claimIp = spa === 0 || spa >= 0xe000_0000 ? null : spa;
  out.claimMac = macAt(p, L3 + 8);
  out.targetIp = out.request ? ipv4At(p, L3 + 24) : null;
  out.router = null;
  return "ok";
}

function parseNd(p: Uint8Array, out: NeighbourMessage, solicit: boolean): "malformed" | "ok" {
  const end = ICMP + u16(p, L3 + 4);
  if (end > p.length || end < ICMP + ND_LEN) return "malformed";
  if (p[L3 + 7] !== 255 || p[ICMP + 1] !== 0 || p[ICMP + 8] === 0xff) return "malformed"; // RFC 4861 §7.1
  const want = solicit ? OPT_SOURCE_LL : OPT_TARGET_LL;
  let mac: Mac | null = null;
  for (let at = ICMP + ND_LEN; at < end;) {
    if (at + 2 > end) return "malformed";
    const len = p[at + 1] * 8;
    if (len === 0 || at + len > end) return "malformed";
    if (p[at] === want && len >= 8) mac = macAt(p, at + 2);
    at += len;
  }
  const unspecifiedSource = isZero(p, L3 + 8, 16);
  if (unspecifiedSource && mac !== null) return "malformed"; // DAD carries no address option
  out.family = 6;
  out.request = solicit;
  out.toGroup = solicit && isGroupMac(macAt(p, DST_OFFSET)) && isSolicitedNodeDst(p);
  out.claimMac = mac;
  if (solicit) {
    out.claimIp = unspecifiedSource || p[L3 + 8] === 0xff ? null : ipv6At(p, L3 + 8);
    out.targetIp = ipv6At(p, ICMP + 8);
    out.router = null;
  } else {
    out.claimIp = ipv6At(p, ICMP + 8);
    out.targetIp = null;
    out.router = (p[ICMP + 4] & NA_ROUTER) !== 0;
  }
  return "ok";
}

/** True when the IPv6 destination is ff02::1:ffXX:XXXX for the NS target's last 24 bits. */
function isSolicitedNodeDst(p: Uint8Array): boolean {
  const dst = L3 + 24;
  if (p[dst] !== 0xff || p[dst + 1] !== 0x02 || !isZero(p, dst + 2, 9)) return false;
  if (p[dst + 11] !== 1 || p[dst + 12] !== 0xff) return false;
  const target = ICMP + 8;
  return p[dst + 13] === p[target + 13] && p[dst + 14] === p[target + 14] &&
    p[dst + 15] === p[target + 15];
}

/**
 * The ICMPv6 checksum of the message at `ICMP` of `p`, `len` bytes long, over the RFC 8200
 * pseudo-header (source, destination, upper-layer length, next header 58); the checksum field
 * must hold zero.
 */
function icmpv6Checksum(p: Uint8Array, len: number): number {
  let sum = 58 + len;
  for (let i = L3 + 8; i < L3 + IP6_LEN; i += 2) sum += u16(p, i);
  for (let i = 0; i + 1 < len; i += 2) sum += u16(p, ICMP + i);
  if (len & 1) sum += p[ICMP + len - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

/** The owner a reply speaks for: its MAC, and for IPv6 whether it is a router. */
export interface ReplyOwner {
  readonly mac: Mac;
  readonly router: boolean | null;
}

/**
 * Builds the reply an owner would send to a request, into one reused buffer: the returned
 * view is valid until the next call (ports copy or write what they are given at once).
 *
 * @example
 * ```ts
 * import { ReplyBuilder } from "./neighbour_frame.ts";
 * const request = new Uint8Array(10 + 42);
 * request.fill(0xff, 10, 16);
 * request.set([2, 0, 0, 0, 0, 1, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 0, 0, 1], 16);
 * request.set([10, 0, 0, 2], 48);
 * const reply = new ReplyBuilder().arpReply(request, { mac: 0x020000000002, router: null });
 * if (reply[10 + 5] !== 1 || reply[10 + 21] !== 2) throw new Error("to the asker, op 2");
 * ```
 */
export class ReplyBuilder {
  readonly #advert = new Uint8Array(ADVERT_LEN);
  readonly #arp = this.#advert.subarray(0, ARP_REPLY_LEN);

  /** "target IP is at owner.mac", to the sender of the ARP request `request`. */
  arpReply(request: Uint8Array, owner: ReplyOwner): Uint8Array {
    const r = this.#arp;
    r.fill(0, 0, VNET_HDR_LEN);
    r.set(request.subarray(L3 + 8, L3 + 14), DST_OFFSET); // to the asker's hardware address
    writeMac(r, SRC_OFFSET, owner.mac);
    r.set(request.subarray(L3 - 2, L3 + 6), L3 - 2); // EtherType, htype, ptype, hlen, plen
    r[L3 + 6] = 0;
    r[L3 + 7] = 2;
    writeMac(r, L3 + 8, owner.mac);
    r.set(request.subarray(L3 + 24, L3 + 28), L3 + 14); // the address asked for
    r.set(request.subarray(L3 + 8, L3 + 18), L3 + 18); // the asker's MAC and IP
    return r;
  }

  /**
   * A solicited neighbour advertisement for the target of `solicit`, from that target to the
   * soliciting address, with the override flag and the owner's router flag (a wrong R would
   * make the asker drop a router from its default list, RFC 4861 §7.2.5).
   */
  advertisement(solicit: Uint8Array, owner: ReplyOwner): Uint8Array {
    const r = this.#advert;
    r.fill(0);
    r.set(solicit.subarray(SRC_OFFSET, SRC_OFFSET + 6), DST_OFFSET); // the asker (== its option)
    writeMac(r, SRC_OFFSET, owner.mac);
    r[L3 - 2] = 0x86;
    r[L3 - 1] = 0xdd;
    r[L3] = 0x60;
    r[L3 + 5] = ND_LEN + 8;
    r[L3 + 6] = 58;
    r[L3 + 7] = 255;
    r.set(solicit.subarray(ICMP + 8, ICMP + 24), L3 + 8); // from the target address
    r.set(solicit.subarray(L3 + 8, L3 + 24), L3 + 24); // to the soliciting address
    r[ICMP] = NA;
    r[ICMP + 4] = (owner.router ? NA_ROUTER : 0) | NA_SOLICITED | NA_OVERRIDE;
    r.set(solicit.subarray(ICMP + 8, ICMP + 24), ICMP + 8);
    r[ICMP + ND_LEN] = OPT_TARGET_LL;
    r[ICMP + ND_LEN + 1] = 1;
    writeMac(r, ICMP + ND_LEN + 2, owner.mac);
    const sum = icmpv6Checksum(r, ND_LEN + 8);
    r[ICMP + 2] = sum >> 8;
    r[ICMP + 3] = sum & 0xff;
    return r;
  }
}

/**
 * Formats an {@linkcode IpKey} for status output (IPv6 with its longest zero run as `::`).
 *
 * @example
 * ```ts
 * import { formatIp } from "./neighbour_frame.ts";
 * if (formatIp(0x0a000001) !== "10.0.0.1") throw new Error("v4");
 * if (formatIp(String.fromCharCode(0xfe80, 0, 0, 0, 0, 0, 0, 1)) !== "fe80::1") throw new Error("v6");
 * ```
 */
export function formatIp(ip: IpKey): string {
  if (typeof ip === "number") {
    return [ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].join(".");
  }
  const groups = [...ip].map((c) => c.charCodeAt(0).toString(16));
  let best = -1, bestLen = 1;
  for (let i = 0; i < groups.length;) {
    let j = i;
    while (j < groups.length && groups[j] === "0") j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  if (best < 0) return groups.join(":");
  return `${groups.slice(0, best).join(":")}::${groups.slice(best + bestLen).join(":")}`;
}
