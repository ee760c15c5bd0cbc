/**
 * ARP and IPv6 neighbour-discovery packets for switch tests, built here independently of the
 * agent's codec (plain offsets, a separate checksum routine), in the agent's packet layout
 * (10-byte zero virtio-net header + Ethernet frame).
 *
 * @module
 */

import { VNET_HDR_LEN } from "../../agent/packet/layout.ts";
import { BROADCAST_MAC, type Mac, writeMac } from "../../agent/switch/ethernet.ts";

const E = VNET_HDR_LEN + 14;

/** "10.0.0.1" as a number, as the agent keys IPv4. */
export function v4(text: string): number {
  return text.split(".").reduce((n, o) => n * 256 + Number(o), 0);
}

/** "fe80::1" as 16 bytes. */
export function v6(text: string): Uint8Array {
  const [head, tail] = text.includes("::") ? text.split("::") : [text, null];
  const groups = (s: string) => (s === "" ? [] : s.split(":").map((g) => parseInt(g, 16)));
  const h = groups(head);
  const t = tail === null ? [] : groups(tail);
  const all = [...h, ...new Array(8 - h.length - t.length).fill(0), ...t];
  const out = new Uint8Array(16);
  all.forEach((g, i) => (out[2 * i] = g >> 8, out[2 * i + 1] = g & 255));
  return out;
}

/** An IPv6 address as the agent keys it (8 UTF-16 code units). */
export function v6Key(text: string): string {
  const b = v6(text);
  let s = "";
  for (let i = 0; i < 16; i += 2) s += String.fromCharCode((b[i] << 8) | b[i + 1]);
  return s;
}

/** An ARP packet. `dst` defaults to broadcast for a request, to `tha` for a reply. */
export function arp(o: {
  op: 1 | 2;
  sha: Mac;
  spa: string;
  tpa: string;
  tha?: Mac;
  src?: Mac;
  dst?: Mac;
}): Uint8Array {
  const p = new Uint8Array(E + 28);
  writeMac(p, VNET_HDR_LEN, o.dst ?? (o.op === 1 ? BROADCAST_MAC : o.tha ?? 0));
  writeMac(p, VNET_HDR_LEN + 6, o.src ?? o.sha);
  p.set([0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, o.op], E - 2);
  writeMac(p, E + 8, o.sha);
  new DataView(p.buffer).setUint32(E + 14, v4(o.spa));
  writeMac(p, E + 18, o.tha ?? 0);
  new DataView(p.buffer).setUint32(E + 24, v4(o.tpa));
  return p;
}

/** The solicited-node multicast address of `target` and its Ethernet group. */
export function solicitedNode(target: Uint8Array): { ip: Uint8Array; mac: Mac } {
  const ip = v6("ff02::1:ff00:0");
  ip.set(target.subarray(13), 13);
  return { ip, mac: 0x3333_ff00_0000 + target[13] * 65536 + target[14] * 256 + target[15] };
}

/** A neighbour solicitation (135) or advertisement (136) with an optional link-layer option. */
export function nd(o: {
  type: 135 | 136;
  src: Mac;
  srcIp: string;
  target: string;
  /** Link-layer option's MAC (source for NS, target for NA); null: none. */
  lla?: Mac | null;
  dstIp?: string;
  dst?: Mac;
  flags?: number;
  hopLimit?: number;
}): Uint8Array {
  const target = v6(o.target);
  const group = solicitedNode(target);
  const lla = o.lla === undefined ? o.src : o.lla;
  const icmpLen = 24 + (lla === null ? 0 : 8);
  const p = new Uint8Array(E + 40 + icmpLen);
  writeMac(p, VNET_HDR_LEN, o.dst ?? (o.type === 135 ? group.mac : 0x3333_0000_0001));
  writeMac(p, VNET_HDR_LEN + 6, o.src);
  p.set([0x86, 0xdd, 0x60, 0, 0, 0, 0, icmpLen, 58, o.hopLimit ?? 255], E - 2);
  p.set(v6(o.srcIp), E + 8);
  p.set(o.dstIp ? v6(o.dstIp) : o.type === 135 ? group.ip : v6("ff02::1"), E + 24);
  const icmp = E + 40;
  p[icmp] = o.type;
  p[icmp + 4] = o.flags ?? 0;
  p.set(target, icmp + 8);
  if (lla !== null) {
    p[icmp + 24] = o.type === 135 ? 1 : 2;
    p[icmp + 25] = 1;
    writeMac(p, icmp + 26, lla);
  }
  const sum = icmpv6Checksum(p);
  p[icmp + 2] = sum >> 8;
  p[icmp + 3] = sum & 255;
  return p;
}

/**
 * The ICMPv6 checksum a packet should carry (its own checksum field counted as zero): the
 * pseudo-header and the message laid out as one byte array and summed in 16-bit words.
 */
export function icmpv6Checksum(packet: Uint8Array): number {
  const ip = packet.subarray(E, E + 40);
  const len = (ip[4] << 8) | ip[5];
  const icmp = packet.slice(E + 40, E + 40 + len);
  icmp[2] = icmp[3] = 0;
  const pseudo = [...ip.subarray(8, 40), 0, 0, len >> 8, len & 255, 0, 0, 0, 58, ...icmp];
  if (pseudo.length % 2) pseudo.push(0);
  let sum = 0;
  for (let i = 0; i < pseudo.length; i += 2) sum += pseudo[i] * 256 + pseudo[i + 1];
  while (sum >= 65536) sum = (sum % 65536) + Math.floor(sum / 65536);
  return 0xffff - sum;
}
