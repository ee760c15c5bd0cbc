import { IPPROTO_TCP, IPPROTO_UDP, L3L4Headers, parseL3L4 } from "../../../agent/packet/l3l4.ts";
import { VNET_HDR_LEN } from "../../../agent/packet/layout.ts";
import { assert, assertEquals } from "../../support/assert.ts";

// ---------------------------------------------------------------------------------------------
// The two parsers parseL3L4 replaced, kept word for word (but for their outputs) as reference
// models: what each caller accepts must not change.

/** segment.ts before: the headers of a TCP superframe, given its GSO type (v4 or not). */
function oldSegmentParse(packet: Uint8Array, ipv4: boolean) {
  const end = packet.length;
  let l3 = VNET_HDR_LEN + 14;
  if (l3 > end) return null;
  let etherType = (packet[l3 - 2] << 8) | packet[l3 - 1];
  if (etherType === 0x8100) {
    l3 += 4;
    if (l3 > end) return null;
    etherType = (packet[l3 - 2] << 8) | packet[l3 - 1];
  }
  let ipHdrLen: number;
  if (ipv4) {
    if (etherType !== 0x0800 || l3 + 20 > end) return null;
    if (packet[l3] >> 4 !== 4) return null;
    ipHdrLen = (packet[l3] & 0x0f) * 4;
    if (ipHdrLen < 20 || l3 + ipHdrLen > end) return null;
    if (packet[l3 + 9] !== 6) return null;
    if ((((packet[l3 + 6] << 8) | packet[l3 + 7]) & 0x3fff) !== 0) return null;
  } else {
    if (etherType !== 0x86dd || l3 + 40 > end) return null;
    if (packet[l3] >> 4 !== 6) return null;
    if (packet[l3 + 6] !== 6) return null;
    ipHdrLen = 40;
  }
  const l4 = l3 + ipHdrLen;
  if (l4 + 20 > end) return null;
  const tcpHdrLen = (packet[l4 + 12] >> 4) * 4;
  if (tcpHdrLen < 20 || l4 + tcpHdrLen > end) return null;
  return { l3, l4, ipHdrLen, tcpHdrLen };
}

/** capture_offload.ts before: the headers of a captured TCP/UDP frame worth marking. */
function oldCaptureParse(packet: Uint8Array) {
  const f = VNET_HDR_LEN;
  const len = packet.length;
  let l3 = f + 14;
  if (len < l3) return null;
  let etherType = (packet[f + 12] << 8) | packet[f + 13];
  if (etherType === 0x8100) {
    if (len < l3 + 4) return null;
    etherType = (packet[f + 16] << 8) | packet[f + 17];
    l3 += 4;
  }
  let l4: number, proto: number, l4Len: number, ipv4: boolean;
  if (etherType === 0x0800) {
    if (len < l3 + 20 || packet[l3] >> 4 !== 4) return null;
    const ihl = (packet[l3] & 0x0f) * 4;
    const total = (packet[l3 + 2] << 8) | packet[l3 + 3];
    const fragment = ((packet[l3 + 6] & 0x3f) << 8) | packet[l3 + 7];
    if (ihl < 20 || fragment !== 0 || total < ihl || l3 + total > len) return null;
    proto = packet[l3 + 9];
    l4 = l3 + ihl;
    l4Len = total - ihl;
    ipv4 = true;
  } else if (etherType === 0x86dd) {
    if (len < l3 + 40 || packet[l3] >> 4 !== 6) return null;
    proto = packet[l3 + 6];
    l4 = l3 + 40;
    l4Len = (packet[l3 + 4] << 8) | packet[l3 + 5];
    if (l4 + l4Len > len) return null;
    ipv4 = false;
  } else {
    return null;
  }
  let l4HeaderLen: number;
  if (proto === 6) {
    if (l4Len < 20) return null;
    l4HeaderLen = (packet[l4 + 12] >> 4) * 4;
    if (l4HeaderLen < 20 || l4HeaderLen > l4Len) return null;
  } else if (proto === 17) {
    if (l4Len < 8) return null;
    l4HeaderLen = 8;
  } else {
    return null;
  }
  return { l3, l4, proto, l4Len, l4HeaderLen, ipv4 };
}

// What each caller now does with parseL3L4 (segment.ts and capture_offload.ts, same checks).

function newSegmentParse(packet: Uint8Array, ipv4: boolean) {
  const h = parseL3L4(packet, VNET_HDR_LEN, new L3L4Headers());
  if (h === null || h.ipVersion !== (ipv4 ? 4 : 6) || h.l4Proto !== IPPROTO_TCP) return null;
  return { l3: h.l3, l4: h.l4, ipHdrLen: h.ipHeaderLen, tcpHdrLen: h.l4HeaderLen };
}

function newCaptureParse(packet: Uint8Array) {
  const h = parseL3L4(packet, VNET_HDR_LEN, new L3L4Headers());
  if (h === null || h.ipEnd > packet.length || h.l4 + h.l4HeaderLen > h.ipEnd) return null;
  return {
    l3: h.l3,
    l4: h.l4,
    proto: h.l4Proto,
    l4Len: h.ipEnd - h.l4,
    l4HeaderLen: h.l4HeaderLen,
    ipv4: h.ipVersion === 4,
  };
}

// ---------------------------------------------------------------------------------------------
// Frames shaped like real ones, with the fields the parsers read drawn near their edges.

/** mulberry32: deterministic, so a failing case reproduces from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function realShaped(random: () => number): Uint8Array {
  const pick = <T>(xs: T[]): T => xs[Math.floor(random() * xs.length)];
  const int = (n: number) => Math.floor(random() * n);
  const vlan = random() < 0.2;
  const v6 = random() < 0.4;
  const ipHdr = v6 ? 40 : 4 * pick([5, 5, 5, 6, 15, 4, 0]);
  const proto = pick([6, 6, 17, 17, 1, 58, 0, 44]);
  const l4Hdr = proto === 17 ? 8 : 4 * pick([5, 5, 8, 15, 4, 0]);
  const payload = pick([0, 1, 100, 1448, 9000, int(70_000)]);
  const l3 = VNET_HDR_LEN + 14 + (vlan ? 4 : 0);
  const l4 = l3 + Math.max(ipHdr, 20);
  const p = new Uint8Array(l4 + Math.max(l4Hdr, 20) + payload + pick([0, 0, 6, 20]));
  for (let i = 0; i < p.length && i < 200; i++) p[i] = int(256);
  const put16 = (at: number, v: number) => (p[at] = (v >> 8) & 0xff, p[at + 1] = v & 0xff);
  if (vlan) put16(VNET_HDR_LEN + 12, 0x8100);
  put16(l3 - 2, pick([v6 ? 0x86dd : 0x0800, v6 ? 0x86dd : 0x0800, 0x0806, 0x0800, 0x86dd]));
  p[l3] = (pick([v6 ? 6 : 4, v6 ? 6 : 4, v6 ? 6 : 4, 4, 6, 0]) << 4) | ((ipHdr / 4) & 0x0f);
  const ipLen = l4 - l3 + Math.max(l4Hdr, 20) + payload + pick([0, 0, 0, -1, 1, -30, 100]);
  if (v6) {
    put16(l3 + 4, Math.max(0, ipLen - 40) & 0xffff);
    p[l3 + 6] = proto;
  } else {
    put16(l3 + 2, Math.max(0, ipLen) & 0xffff);
    put16(l3 + 6, pick([0x4000, 0x4000, 0, 0x2000, 0x0001, 0x8000]));
    p[l3 + 9] = proto;
  }
  const at = l3 + ipHdr;
  if (at + 13 < p.length && proto !== 17) p[at + 12] = ((l4Hdr / 4) << 4) | (p[at + 12] & 0x0f);
  // Cut some captures short, anywhere in the headers.
  return random() < 0.3 ? p.subarray(0, int(l4 + 60)) : p;
}

Deno.test("parseL3L4 gives what the segmenter and the capture marking accepted before", () => {
  const random = prng(19);
  let segmented = 0;
  let marked = 0;
  for (let i = 0; i < 20_000; i++) {
    const p = realShaped(random);
    for (const ipv4 of [true, false]) {
      const want = oldSegmentParse(p, ipv4);
      assertEquals(newSegmentParse(p, ipv4), want, `segment, case ${i}, ipv4 ${ipv4}`);
      if (want) segmented++;
    }
    const want = oldCaptureParse(p);
    assertEquals(newCaptureParse(p), want, `capture, case ${i}`);
    if (want) marked++;
  }
  // Both kinds of outcome were reached often enough for the comparison to mean something.
  assert(segmented > 500 && marked > 500, `only ${segmented} segmentable, ${marked} marked`);
});

Deno.test("parseL3L4 on random bytes never throws and stays inside the packet", () => {
  const random = prng(4);
  const out = new L3L4Headers();
  const reasons = new Set<string>();
  for (let i = 0; i < 50_000; i++) {
    const p = new Uint8Array(Math.floor(random() * 120));
    for (let k = 0; k < p.length; k++) p[k] = Math.floor(random() * 256);
    // Steer a share of them past the EtherType and version checks.
    if (p.length > 25 && random() < 0.5) {
      const v6 = random() < 0.5;
      p[22] = v6 ? 0x86 : 0x08;
      p[23] = v6 ? 0xdd : 0x00;
      p[24] = (v6 ? 0x60 : 0x40) | (p[24] & 0x0f);
      if (!v6 && random() < 0.7) p[30] = p[31] = 0;
    }
    const ethOffset = random() < 0.8 ? VNET_HDR_LEN : Math.floor(random() * 20);
    const h = parseL3L4(p, ethOffset, out);
    reasons.add(out.reason);
    if (h === null) continue;
    assert(h === out, "the result is the object given");
    assert(ethOffset < h.l3 && h.l3 < h.l4, `offsets out of order in case ${i}`);
    assertEquals(h.l4, h.l3 + h.ipHeaderLen, `l4 in case ${i}`);
    assert(h.l4 + h.l4HeaderLen <= p.length, `L4 header past the end in case ${i}`);
    assert(h.l4Proto === IPPROTO_TCP || h.l4Proto === IPPROTO_UDP, `protocol in case ${i}`);
  }
  assertEquals([...reasons].sort(), [
    "bad-ip-header",
    "bad-tcp-header",
    "fragment",
    "not-ip",
    "not-tcp-udp",
    "ok",
    "truncated",
  ]);
});

Deno.test("parseL3L4 finds the headers behind an 802.1Q tag and reports the IP length", () => {
  const p = new Uint8Array(VNET_HDR_LEN + 18 + 40 + 32 + 5);
  p.set([0x81, 0x00, 0x00, 0x07, 0x86, 0xdd], VNET_HDR_LEN + 12);
  const l3 = VNET_HDR_LEN + 18;
  p.set([0x60, 0, 0, 0, 0, 37, IPPROTO_TCP, 64], l3); // payload length 37, TCP
  p[l3 + 40 + 12] = 8 << 4; // data offset 8: 32 bytes of TCP header
  const h = parseL3L4(p, VNET_HDR_LEN, new L3L4Headers());
  assertEquals(
    h && [h.l3, h.ipVersion, h.ipHeaderLen, h.l4Proto, h.l4, h.l4HeaderLen, h.ipEnd],
    [l3, 6, 40, IPPROTO_TCP, l3 + 40, 32, p.length],
  );
});
