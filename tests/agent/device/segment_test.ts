import { toPlainFrames } from "../../../agent/device/segment.ts";
import { internetChecksum } from "../../../agent/device/checksum.ts";
import {
  VNET_F_DATA_VALID,
  VNET_F_NEEDS_CSUM,
  VNET_GSO_ECN,
  VNET_GSO_NONE,
  VNET_GSO_TCPV4,
  VNET_GSO_TCPV6,
  VNET_GSO_UDP,
  writeVnetHeader,
} from "../../../agent/device/vnet_header.ts";
import { Tap } from "../../../ffi/mod.ts";
import { IS_ROOT, Netns, ROOT_ONLY, uniqueIfName } from "../../support/netns.ts";

// ---------------------------------------------------------------------------------------------
// Helpers: a small seeded PRNG, an independent checksum check, and a superframe builder.

const FIN = 0x01, SYN = 0x02, PSH = 0x08, ACK = 0x10, ECE = 0x40, CWR = 0x80;

function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

function assertEquals(actual: unknown, expected: unknown, message: string): void {
  if (actual !== expected) throw new Error(`${message}: expected ${expected}, got ${actual}`);
}

/** mulberry32: deterministic, so a failing fuzz case reproduces. */
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

/**
 * True when `parts` (concatenated) carry a valid Internet checksum. Written unlike the module:
 * 16-bit words are summed as BigInt with no folding, and the one's-complement sum is 0xffff
 * exactly when the plain sum is a non-zero multiple of 65535 (2^16 = 1 mod 65535).
 */
function checksumValid(...parts: ArrayLike<number>[]): boolean {
  const all: number[] = [];
  for (const p of parts) for (let i = 0; i < p.length; i++) all.push(p[i]);
  if (all.length % 2 === 1) all.push(0);
  let total = 0n;
  for (let i = 0; i < all.length; i += 2) total += BigInt(all[i] * 256 + all[i + 1]);
  return total !== 0n && total % 65535n === 0n;
}

function be16(b: Uint8Array, at: number): number {
  return b[at] * 256 + b[at + 1];
}

function be32(b: Uint8Array, at: number): number {
  return b[at] * 16777216 + b[at + 1] * 65536 + b[at + 2] * 256 + b[at + 3];
}

function put16(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >> 8) & 0xff;
  b[at + 1] = v & 0xff;
}

/** Little-endian, as the virtio-net header fields are. */
function putLe16(b: Uint8Array, at: number, v: number): void {
  b[at] = v & 0xff;
  b[at + 1] = (v >> 8) & 0xff;
}

function put32(b: Uint8Array, at: number, v: number): void {
  put16(b, at, Math.floor(v / 65536) & 0xffff);
  put16(b, at + 2, v & 0xffff);
}

/** Pseudo-header bytes: addresses, zero, protocol, L4 length (IPv4 layout or IPv6 layout). */
function pseudoHeader(ipv6: boolean, src: Uint8Array, dst: Uint8Array, proto: number, len: number) {
  const p = new Uint8Array(ipv6 ? 40 : 12);
  p.set(src, 0);
  p.set(dst, src.length);
  if (ipv6) {
    put32(p, 32, len);
    p[39] = proto;
  } else {
    p[9] = proto;
    put16(p, 10, len);
  }
  return p;
}

/** Folded, uncomplemented pseudo-header sum, as the kernel leaves it in a NEEDS_CSUM field. */
function partialSum(pseudo: Uint8Array): number {
  return ~internetChecksum(pseudo) & 0xffff;
}

interface Spec {
  ipv6?: boolean;
  vlan?: boolean;
  ecn?: boolean;
  payloadLen: number;
  gsoSize: number;
  tcpFlags: number;
  /** Extra TCP option bytes (multiple of 4). */
  tcpOptions?: number;
  /** Extra IPv4 option bytes (multiple of 4). */
  ipOptions?: number;
  seq?: number;
  ipId?: number;
  seed?: number;
}

interface Built {
  packet: Uint8Array;
  payload: Uint8Array;
  l3: number; // frame offsets (after the virtio-net header)
  l4: number;
  ipHdrLen: number;
  tcpHdrLen: number;
}

const SRC4 = new Uint8Array([192, 168, 7, 1]);
const DST4 = new Uint8Array([10, 20, 30, 40]);
const SRC6 = new Uint8Array([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
const DST6 = new Uint8Array([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xab, 0xcd, 0, 2]);

/** A superframe as a TAP with TSO gives it: NEEDS_CSUM, partial pseudo sum in the TCP field. */
function buildSuperframe(spec: Spec): Built {
  const rand = prng(spec.seed ?? 1);
  const ipv6 = spec.ipv6 ?? false;
  const l3 = spec.vlan ? 18 : 14;
  const ipHdrLen = ipv6 ? 40 : 20 + (spec.ipOptions ?? 0);
  const tcpHdrLen = 20 + (spec.tcpOptions ?? 0);
  const l4 = l3 + ipHdrLen;
  const headers = l4 + tcpHdrLen;
  const frame = new Uint8Array(headers + spec.payloadLen);
  frame.set([0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x52, 0x54, 0, 0xab, 0xcd, 0xef]);
  if (spec.vlan) {
    put16(frame, 12, 0x8100);
    put16(frame, 14, 0x2064); // PCP 1, VID 100
  }
  put16(frame, l3 - 2, ipv6 ? 0x86dd : 0x0800);
  const ipLen = ipHdrLen + tcpHdrLen + spec.payloadLen;
  if (ipv6) {
    frame.set([0x60, 0x01, 0x23, 0x45], l3);
    put16(frame, l3 + 4, tcpHdrLen + spec.payloadLen);
    frame[l3 + 6] = 6;
    frame[l3 + 7] = 64;
    frame.set(SRC6, l3 + 8);
    frame.set(DST6, l3 + 24);
  } else {
    frame[l3] = 0x40 | (ipHdrLen / 4);
    frame[l3 + 1] = 0x02; // ECT(0)
    put16(frame, l3 + 2, ipLen);
    put16(frame, l3 + 4, spec.ipId ?? 0xfffe);
    put16(frame, l3 + 6, 0x4000); // DF
    frame[l3 + 8] = 64;
    frame[l3 + 9] = 6;
    frame.set(SRC4, l3 + 12);
    frame.set(DST4, l3 + 16);
    for (let i = 20; i < ipHdrLen; i++) frame[l3 + i] = 1; // NOP options
    put16(frame, l3 + 10, internetChecksum(frame.subarray(l3, l4)));
  }
  put16(frame, l4, 40000);
  put16(frame, l4 + 2, 5201);
  put32(frame, l4 + 4, spec.seq ?? 0xfffff000);
  put32(frame, l4 + 8, 123456789);
  frame[l4 + 12] = (tcpHdrLen / 4) << 4;
  frame[l4 + 13] = spec.tcpFlags;
  put16(frame, l4 + 14, 502);
  for (let i = 20; i < tcpHdrLen; i++) frame[l4 + i] = 1; // NOP options
  for (let i = headers; i < frame.length; i++) frame[i] = Math.floor(rand() * 256);
  const pseudo = pseudoHeader(
    ipv6,
    ipv6 ? SRC6 : SRC4,
    ipv6 ? DST6 : DST4,
    6,
    tcpHdrLen + spec.payloadLen,
  );
  put16(frame, l4 + 16, partialSum(pseudo));

  const packet = new Uint8Array(10 + frame.length);
  writeVnetHeader(packet, {
    flags: VNET_F_NEEDS_CSUM,
    gsoType: (ipv6 ? VNET_GSO_TCPV6 : VNET_GSO_TCPV4) | (spec.ecn ? VNET_GSO_ECN : 0),
    hdrLen: headers,
    gsoSize: spec.gsoSize,
    csumStart: l4,
    csumOffset: 16,
  });
  packet.set(frame, 10);
  return {
    packet,
    payload: frame.slice(headers),
    l3,
    l4,
    ipHdrLen,
    tcpHdrLen,
  };
}

/** Runs toPlainFrames and copies every emitted frame (the views are only valid during emit). */
function run(packet: Uint8Array, mtu: number): { ok: boolean; frames: Uint8Array[] } {
  const frames: Uint8Array[] = [];
  const ok = toPlainFrames(packet, mtu, (f) => frames.push(f.slice()));
  return { ok, frames };
}

/** Checks every segment of `built` against what the kernel would have put on the wire. */
function checkSegments(spec: Spec, built: Built, frames: Uint8Array[], mtu: number): void {
  const ipv6 = spec.ipv6 ?? false;
  const { l3, l4, ipHdrLen, tcpHdrLen } = built;
  const headers = l4 + tcpHdrLen;
  const seg = Math.min(spec.gsoSize, mtu - ipHdrLen - tcpHdrLen);
  const expected = Math.max(1, Math.ceil(spec.payloadLen / seg));
  assertEquals(frames.length, expected, "segment count");
  const original = built.packet.subarray(10);
  const seq0 = be32(original, l4 + 4);
  const joined = new Uint8Array(spec.payloadLen);
  let joinedAt = 0;

  frames.forEach((packet, i) => {
    const what = `segment ${i}`;
    assert(packet.subarray(0, 10).every((b) => b === 0), `${what}: header not zeroed`);
    const f = packet.subarray(10);
    const payloadLen = f.length - headers;
    const last = i === frames.length - 1;
    assertEquals(payloadLen, last ? spec.payloadLen - seg * i : seg, `${what}: payload length`);
    assert(f.length - l3 <= mtu, `${what}: exceeds mtu`);
    // Ethernet (+VLAN) untouched.
    assert(f.subarray(0, l3).every((b, k) => b === original[k]), `${what}: L2 header changed`);

    if (ipv6) {
      assertEquals(be16(f, l3 + 4), tcpHdrLen + payloadLen, `${what}: IPv6 payload length`);
      assert(
        f.subarray(l3, l3 + 4).every((b, k) => b === original[l3 + k]) &&
          f.subarray(l3 + 6, l4).every((b, k) => b === original[l3 + 6 + k]),
        `${what}: IPv6 header changed beyond the length`,
      );
    } else {
      assertEquals(be16(f, l3 + 2), ipHdrLen + tcpHdrLen + payloadLen, `${what}: IPv4 length`);
      assertEquals(be16(f, l3 + 4), (be16(original, l3 + 4) + i) % 65536, `${what}: IPv4 id`);
      assertEquals(be16(f, l3 + 6), 0x4000, `${what}: IPv4 flags`);
      assert(checksumValid(f.subarray(l3, l4)), `${what}: IPv4 header checksum`);
    }

    const pseudo = pseudoHeader(
      ipv6,
      ipv6 ? SRC6 : SRC4,
      ipv6 ? DST6 : DST4,
      6,
      tcpHdrLen + payloadLen,
    );
    assert(checksumValid(pseudo, f.subarray(l4)), `${what}: TCP checksum`);
    assertEquals(be32(f, l4 + 4), (seq0 + joinedAt) % 2 ** 32, `${what}: sequence number`);
    assertEquals(be32(f, l4 + 8), 123456789, `${what}: ack number`);

    let flags = spec.tcpFlags;
    if (!last) flags &= ~(FIN | PSH);
    if (i !== 0) flags &= ~CWR;
    assertEquals(f[l4 + 13], flags, `${what}: TCP flags`);
    assert(
      f.subarray(l4 + 20, headers).every((b, k) => b === original[l4 + 20 + k]),
      `${what}: TCP options changed`,
    );

    joined.set(f.subarray(headers), joinedAt);
    joinedAt += payloadLen;
  });
  assertEquals(joinedAt, spec.payloadLen, "payload bytes emitted");
  assert(joined.every((b, k) => b === built.payload[k]), "payload concatenation differs");
}

// ---------------------------------------------------------------------------------------------
// Segmentation

const CASES: { name: string; spec: Spec; mtu?: number }[] = [
  {
    name: "IPv4, 3 full + 1 short",
    spec: { payloadLen: 1448 * 3 + 100, gsoSize: 1448, tcpFlags: ACK | PSH },
  },
  {
    name: "IPv4, exact multiple",
    spec: { payloadLen: 1448 * 4, gsoSize: 1448, tcpFlags: ACK | PSH | FIN },
  },
  { name: "IPv4, ~64 KiB", spec: { payloadLen: 65535 - 40, gsoSize: 1448, tcpFlags: ACK | PSH } },
  {
    name: "IPv4 with IP and TCP options, VLAN",
    spec: {
      payloadLen: 9000,
      gsoSize: 1436,
      tcpFlags: ACK,
      tcpOptions: 12,
      ipOptions: 4,
      vlan: true,
    },
  },
  {
    name: "IPv4 ECN: CWR on first only, ECE everywhere, FIN/PSH on last",
    spec: { payloadLen: 5000, gsoSize: 1448, tcpFlags: ACK | PSH | FIN | ECE | CWR, ecn: true },
  },
  {
    name: "IPv4 id wraps",
    spec: { payloadLen: 6000, gsoSize: 1000, tcpFlags: ACK, ipId: 0xfffe, seq: 0xffffffff - 2500 },
  },
  { name: "IPv4 odd gso_size", spec: { payloadLen: 4001, gsoSize: 999, tcpFlags: ACK | PSH } },
  {
    name: "IPv4 payload fits one segment",
    spec: { payloadLen: 500, gsoSize: 1448, tcpFlags: ACK | PSH | FIN },
  },
  { name: "IPv4 no payload", spec: { payloadLen: 0, gsoSize: 1448, tcpFlags: ACK | FIN } },
  {
    name: "IPv6",
    spec: { ipv6: true, payloadLen: 1428 * 5 + 7, gsoSize: 1428, tcpFlags: ACK | PSH },
  },
  {
    name: "IPv6 VLAN ECN FIN, timestamps",
    spec: {
      ipv6: true,
      vlan: true,
      ecn: true,
      payloadLen: 30000,
      gsoSize: 1416,
      tcpFlags: ACK | PSH | FIN | CWR | ECE,
      tcpOptions: 12,
    },
  },
  {
    name: "IPv6 ~64 KiB",
    spec: { ipv6: true, payloadLen: 65535 - 20, gsoSize: 1428, tcpFlags: ACK },
  },
  {
    name: "mtu smaller than gso_size (IPv4)",
    spec: { payloadLen: 10000, gsoSize: 1448, tcpFlags: ACK | PSH },
    mtu: 1000,
  },
  {
    name: "mtu smaller than gso_size (IPv6, VLAN)",
    spec: { ipv6: true, vlan: true, payloadLen: 10000, gsoSize: 8940, tcpFlags: ACK | PSH },
    mtu: 1280,
  },
  {
    name: "jumbo mtu keeps gso_size",
    spec: { payloadLen: 30000, gsoSize: 8948, tcpFlags: ACK },
    mtu: 9000,
  },
];

for (const { name, spec, mtu = 1500 } of CASES) {
  Deno.test(`toPlainFrames segments ${name}`, () => {
    const built = buildSuperframe(spec);
    const before = built.packet.slice();
    const { ok, frames } = run(built.packet, mtu);
    assert(ok, "returned false");
    checkSegments(spec, built, frames, mtu);
    assert(built.packet.every((b, k) => b === before[k]), "input packet was modified");
  });
}

Deno.test("toPlainFrames ignores a wrong hdr_len inside the frame and a stale TCP checksum", () => {
  const spec: Spec = { payloadLen: 3000, gsoSize: 1448, tcpFlags: ACK | PSH };
  const built = buildSuperframe(spec);
  putLe16(built.packet, 2, 20); // hdr_len too short: the headers are parsed, not trusted
  put16(built.packet, 10 + built.l4 + 16, 0xdead);
  built.packet[0] = 0; // GSO without NEEDS_CSUM
  const { ok, frames } = run(built.packet, 1500);
  assert(ok, "returned false");
  checkSegments(spec, built, frames, 1500);
});

Deno.test("toPlainFrames accepts hdr_len up to the end of the frame", () => {
  const spec: Spec = { payloadLen: 3000, gsoSize: 1448, tcpFlags: ACK | PSH };
  const built = buildSuperframe(spec);
  putLe16(built.packet, 2, built.packet.length - 10);
  const { ok, frames } = run(built.packet, 1500);
  assert(ok, "returned false");
  checkSegments(spec, built, frames, 1500);
});

Deno.test("toPlainFrames emits views into one reused buffer, valid during emit", () => {
  const built = buildSuperframe({ payloadLen: 5000, gsoSize: 1448, tcpFlags: ACK });
  const views: Uint8Array[] = [];
  assert(toPlainFrames(built.packet, 1500, (f) => views.push(f)), "returned false");
  assert(views.length === 4 && views.every((v) => v.buffer === views[0].buffer), "not one buffer");
});

Deno.test("toPlainFrames segments correctly when emit re-enters it", () => {
  const outerSpec: Spec = { payloadLen: 4000, gsoSize: 1448, tcpFlags: ACK | PSH };
  const innerSpec: Spec = { ipv6: true, payloadLen: 3000, gsoSize: 1000, tcpFlags: ACK | FIN };
  const outer = buildSuperframe(outerSpec);
  const inner = buildSuperframe(innerSpec);
  const outerFrames: Uint8Array[] = [];
  let innerFrames: Uint8Array[] = [];
  const ok = toPlainFrames(outer.packet, 1500, (f) => {
    if (outerFrames.length === 1) innerFrames = run(inner.packet, 1500).frames;
    outerFrames.push(f.slice());
  });
  assert(ok, "returned false");
  checkSegments(outerSpec, outer, outerFrames, 1500);
  checkSegments(innerSpec, inner, innerFrames, 1500);
});

Deno.test("toPlainFrames lets an exception from emit propagate and recovers after it", () => {
  const spec: Spec = { payloadLen: 3000, gsoSize: 1448, tcpFlags: ACK };
  const built = buildSuperframe(spec);
  let threw = false;
  try {
    toPlainFrames(built.packet, 1500, () => {
      throw new Error("device gone");
    });
  } catch {
    threw = true;
  }
  assert(threw, "exception swallowed");
  const views: Uint8Array[] = [];
  const { ok, frames } = run(built.packet, 1500);
  assert(ok, "returned false");
  checkSegments(spec, built, frames, 1500);
  // The shared buffer is free again, not leaked to per-call allocation.
  toPlainFrames(built.packet, 1500, (f) => views.push(f));
  toPlainFrames(built.packet, 1500, (f) => views.push(f));
  assert(views[0].buffer === views[views.length - 1].buffer, "scratch buffer not reused");
});

// ---------------------------------------------------------------------------------------------
// Plain packets and checksum completion

Deno.test("toPlainFrames emits a plain packet as it is", () => {
  const built = buildSuperframe({ payloadLen: 100, gsoSize: 1448, tcpFlags: ACK });
  built.packet.fill(0, 0, 10);
  built.packet[0] = VNET_F_DATA_VALID; // still plain: nothing to do
  const seen: Uint8Array[] = [];
  assert(toPlainFrames(built.packet, 1500, (f) => seen.push(f)), "returned false");
  assert(seen.length === 1 && seen[0] === built.packet, "not emitted as it is");
});

/** A NEEDS_CSUM, non-GSO packet: TCP or UDP over IPv4 or IPv6, partial sum in the field. */
function buildCsumOnly(proto: 6 | 17, ipv6: boolean, payloadLen: number, seed: number) {
  const rand = prng(seed);
  const l3 = 14;
  const l4 = l3 + (ipv6 ? 40 : 20);
  const l4Hdr = proto === 6 ? 20 : 8;
  const frame = new Uint8Array(l4 + l4Hdr + payloadLen);
  put16(frame, 12, ipv6 ? 0x86dd : 0x0800);
  if (ipv6) {
    frame[l3] = 0x60;
    put16(frame, l3 + 4, l4Hdr + payloadLen);
    frame[l3 + 6] = proto;
    frame[l3 + 7] = 64;
    frame.set(SRC6, l3 + 8);
    frame.set(DST6, l3 + 24);
  } else {
    frame[l3] = 0x45;
    put16(frame, l3 + 2, 20 + l4Hdr + payloadLen);
    frame[l3 + 8] = 64;
    frame[l3 + 9] = proto;
    frame.set(SRC4, l3 + 12);
    frame.set(DST4, l3 + 16);
    put16(frame, l3 + 10, internetChecksum(frame.subarray(l3, l4)));
  }
  put16(frame, l4, 5353);
  put16(frame, l4 + 2, 53);
  if (proto === 6) {
    put32(frame, l4 + 4, 42);
    frame[l4 + 12] = 0x50;
    frame[l4 + 13] = ACK | PSH;
  } else {
    put16(frame, l4 + 4, l4Hdr + payloadLen);
  }
  for (let i = l4 + l4Hdr; i < frame.length; i++) frame[i] = Math.floor(rand() * 256);
  const pseudo = pseudoHeader(
    ipv6,
    ipv6 ? SRC6 : SRC4,
    ipv6 ? DST6 : DST4,
    proto,
    l4Hdr + payloadLen,
  );
  const csumOffset = proto === 6 ? 16 : 6;
  put16(frame, l4 + csumOffset, partialSum(pseudo));
  const packet = new Uint8Array(10 + frame.length);
  writeVnetHeader(packet, {
    flags: VNET_F_NEEDS_CSUM,
    gsoType: VNET_GSO_NONE,
    hdrLen: 0,
    gsoSize: 0,
    csumStart: l4,
    csumOffset,
  });
  packet.set(frame, 10);
  return { packet, pseudo, l4, csumOffset };
}

for (const proto of [6, 17] as const) {
  for (const ipv6 of [false, true]) {
    const name = `${proto === 6 ? "TCP" : "UDP"}/${ipv6 ? "IPv6" : "IPv4"}`;
    Deno.test(`toPlainFrames completes a NEEDS_CSUM ${name} checksum`, () => {
      for (const payloadLen of [0, 1, 2, 17, 512, 1371]) {
        const { packet, pseudo, l4, csumOffset } = buildCsumOnly(proto, ipv6, payloadLen, 7);
        const before = packet.slice();
        const { ok, frames } = run(packet, 1500);
        assert(ok && frames.length === 1, `${payloadLen}: not one frame`);
        const out = frames[0];
        assertEquals(out.length, packet.length, "length");
        assert(out.subarray(0, 10).every((b) => b === 0), "header not zeroed");
        assert(checksumValid(pseudo, out.subarray(10 + l4)), `${payloadLen}: checksum invalid`);
        assert(be16(out, 10 + l4 + csumOffset) !== 0, "UDP checksum 0 means none");
        assert(
          out.every((b, k) =>
            k < 10 || (k >= 10 + l4 + csumOffset && k < 12 + l4 + csumOffset) ||
            b === packet[k]
          ),
          "bytes other than the checksum changed",
        );
        assert(packet.every((b, k) => b === before[k]), "input packet was modified");
      }
    });
  }
}

Deno.test("toPlainFrames stores a zero checksum as 0xffff", () => {
  // Search for a payload byte that makes the UDP checksum come out as 0 before the 0xffff rule.
  for (let v = 0; v < 65536; v++) {
    const { packet, pseudo, l4 } = buildCsumOnly(17, false, 2, 1);
    put16(packet, 10 + l4 + 8, v);
    const frame = packet.slice(10);
    put16(frame, l4 + 6, 0);
    if (internetChecksum(frame.subarray(l4), ~internetChecksum(pseudo) & 0xffff) !== 0) continue;
    const { ok, frames } = run(packet, 1500);
    assert(ok, "returned false");
    assertEquals(be16(frames[0], 10 + l4 + 6), 0xffff, "zero not stored as 0xffff");
    assert(checksumValid(pseudo, frames[0].subarray(10 + l4)), "checksum invalid");
    return;
  }
  throw new Error("no payload gives a zero checksum");
});

Deno.test("internetChecksum folds an initial sum and pads an odd byte", () => {
  assertEquals(internetChecksum(new Uint8Array()), 0xffff, "empty");
  assertEquals(internetChecksum(new Uint8Array([0xab])), ~0xab00 & 0xffff, "odd byte");
  assertEquals(
    internetChecksum(new Uint8Array([0x12, 0x34]), 0x1_0000_0001),
    ~0x1236 & 0xffff,
    "fold",
  );
  const rand = prng(99);
  for (let n = 0; n < 200; n++) {
    const bytes = Uint8Array.from({ length: Math.floor(rand() * 300) + 1 }, () => rand() * 256);
    const withSum = new Uint8Array(bytes.length + (bytes.length % 2) + 2);
    withSum.set(bytes);
    put16(withSum, withSum.length - 2, internetChecksum(bytes));
    assert(checksumValid(withSum) || bytes.every((b) => b === 0), `random ${n}`);
  }
});

// ---------------------------------------------------------------------------------------------
// Malformed input

/**
 * Expects `packet` to be refused with nothing emitted; unless `hdrLenMatters`, also with hdr_len
 * zeroed, so that each parse check is exercised on its own and not just the hdr_len bound.
 */
function expectRefused(name: string, packet: Uint8Array, mtu = 1500, hdrLenMatters = false) {
  const variants = [packet];
  if (!hdrLenMatters && packet.length >= 10) {
    const zeroed = packet.slice();
    putLe16(zeroed, 2, 0);
    variants.push(zeroed);
  }
  for (const p of variants) {
    const ok = toPlainFrames(p, mtu, () => {
      throw new Error(`${name}: emitted a frame`);
    });
    assert(!ok, `${name}: accepted`);
  }
}

Deno.test("toPlainFrames refuses malformed or unsupported packets", () => {
  const v4 = () => buildSuperframe({ payloadLen: 3000, gsoSize: 1448, tcpFlags: ACK });
  const v6 = () => buildSuperframe({ ipv6: true, payloadLen: 3000, gsoSize: 1448, tcpFlags: ACK });
  const mutate = (b: Built, f: (p: Uint8Array, built: Built) => void) => {
    f(b.packet, b);
    return b.packet;
  };

  expectRefused("shorter than the header", new Uint8Array(9));
  expectRefused("empty", new Uint8Array(0));
  for (const cut of [10, 20, 24, 30, 44, 50, 63]) {
    expectRefused(`IPv4 truncated to ${cut}`, v4().packet.subarray(0, cut));
  }
  for (const cut of [10, 24, 50, 63, 70, 83]) {
    expectRefused(`IPv6 truncated to ${cut}`, v6().packet.subarray(0, cut));
  }
  expectRefused(
    "hdr_len past the end",
    mutate(v4(), (p) => putLe16(p, 2, p.length - 9)),
    1500,
    true,
  );
  expectRefused("gso_size 0", mutate(v4(), (p) => putLe16(p, 4, 0)));
  for (const t of [2, 5, 6, 0x7f, VNET_GSO_UDP, VNET_GSO_UDP | VNET_GSO_ECN]) {
    expectRefused(`gso_type ${t}`, mutate(v4(), (p) => p[1] = t));
  }
  expectRefused("ARP with GSO", mutate(v4(), (p) => put16(p, 10 + 12, 0x0806)));
  expectRefused("VLAN then ARP with GSO", mutate(v4(), (p) => put16(p, 10 + 12, 0x8100)));
  expectRefused("IPv6 behind EtherType IPv4", mutate(v6(), (p) => put16(p, 10 + 12, 0x0800)));
  expectRefused("IPv6 behind EtherType ARP", mutate(v6(), (p) => put16(p, 10 + 12, 0x0806)));
  for (const t of [2, 5, VNET_GSO_UDP]) {
    expectRefused(`gso_type ${t} on IPv6`, mutate(v6(), (p) => p[1] = t));
  }
  expectRefused("TCPV4 on an IPv6 packet", mutate(v6(), (p) => p[1] = VNET_GSO_TCPV4));
  expectRefused("TCPV6 on an IPv4 packet", mutate(v4(), (p) => p[1] = VNET_GSO_TCPV6));
  expectRefused("IPv4 version 6", mutate(v4(), (p, b) => p[10 + b.l3] = 0x65));
  expectRefused(
    "IPv4 IHL 4",
    mutate(v4(), (p, b) => {
      p[10 + b.l3] = 0x44;
      p[10 + b.l4 + 8] = 0x50; // what would be read as the TCP data offset
    }),
  );
  {
    const b = buildSuperframe({ payloadLen: 10, gsoSize: 1448, tcpFlags: ACK });
    expectRefused("IPv4 IHL past the end", mutate(b, (p) => p[10 + b.l3] = 0x4f));
  }
  expectRefused("IPv4 UDP", mutate(v4(), (p, b) => p[10 + b.l3 + 9] = 17));
  expectRefused("IPv4 fragment (MF)", mutate(v4(), (p, b) => put16(p, 10 + b.l3 + 6, 0x2000)));
  expectRefused("IPv4 fragment offset", mutate(v4(), (p, b) => put16(p, 10 + b.l3 + 6, 0x0010)));
  expectRefused("IPv6 version 4", mutate(v6(), (p, b) => p[10 + b.l3] = 0x40));
  expectRefused("IPv6 hop-by-hop header", mutate(v6(), (p, b) => p[10 + b.l3 + 6] = 0));
  expectRefused("IPv6 UDP", mutate(v6(), (p, b) => p[10 + b.l3 + 6] = 17));
  expectRefused("TCP data offset 4", mutate(v4(), (p, b) => p[10 + b.l4 + 12] = 0x40));
  {
    // Larger than any TAP gives, but a packet from a peer may be: the segment's IP length
    // would not fit in 16 bits.
    const b = buildSuperframe({ payloadLen: 70_000, gsoSize: 65535, tcpFlags: ACK });
    expectRefused("IPv4 segment longer than 65535", b.packet, Infinity);
  }
  expectRefused("mtu below the headers", v4().packet, 40);
  expectRefused("mtu 0", v4().packet, 0);
  expectRefused("mtu NaN", v4().packet, NaN);
  expectRefused("mtu negative", v4().packet, -1);
  {
    const b = buildSuperframe({ payloadLen: 60, gsoSize: 1448, tcpFlags: ACK });
    const p = b.packet.subarray(0, 10 + b.l4 + 19);
    expectRefused("TCP header truncated", p);
  }
  {
    const { packet } = buildCsumOnly(6, false, 10, 1);
    putLe16(packet, 6, packet.length - 10 - 1); // csum_start at the last byte
    putLe16(packet, 8, 0);
    expectRefused("NEEDS_CSUM field past the end", packet);
    putLe16(packet, 6, 0xffff);
    expectRefused("NEEDS_CSUM start past the end", packet);
  }
});

Deno.test("toPlainFrames never throws and never runs away on fuzzed input", () => {
  const rand = prng(0x5eed);
  const int = (n: number) => Math.floor(rand() * n);
  const bases = [
    buildSuperframe({ payloadLen: 3000, gsoSize: 1448, tcpFlags: ACK | PSH | FIN }).packet,
    buildSuperframe({ ipv6: true, vlan: true, payloadLen: 2000, gsoSize: 700, tcpFlags: ACK })
      .packet,
    buildSuperframe({
      vlan: true,
      payloadLen: 100,
      gsoSize: 7,
      tcpFlags: CWR | SYN,
      tcpOptions: 40,
    })
      .packet,
    buildCsumOnly(17, true, 300, 3).packet,
  ];
  const mtus = [1500, 1280, 9000, 68, 1, 0, -5, NaN, Infinity, 65535, 1e9];
  let accepted = 0;
  for (let n = 0; n < 20_000; n++) {
    let packet: Uint8Array;
    if (n % 10 === 0) {
      packet = Uint8Array.from({ length: int(200) }, () => int(256));
    } else {
      packet = bases[int(bases.length)].slice();
      const mutations = 1 + int(6);
      for (let m = 0; m < mutations; m++) {
        const at = rand() < 0.5 ? int(10) : int(Math.min(packet.length, 130));
        packet[at] = rand() < 0.3 ? [0, 0xff, 0x80, 1, 3, 4, 6][int(7)] : int(256);
      }
      if (rand() < 0.2) packet = packet.subarray(0, int(packet.length + 1));
    }
    const mtu = mtus[int(mtus.length)];
    let emitted = 0;
    const ok = toPlainFrames(packet, mtu, (f) => {
      emitted++;
      if (emitted > 70_000) throw new Error(`case ${n}: runaway emit`);
      if (f !== packet) {
        assert(f.subarray(0, 10).every((b) => b === 0), `case ${n}: header not zeroed`);
        assert(f.length <= packet.length, `case ${n}: frame longer than the packet`);
      }
    });
    if (ok) accepted++;
    else assertEquals(emitted, 0, `case ${n}: emitted and refused`);
  }
  assert(accepted > 1000, `fuzz accepted only ${accepted}: mutations too destructive`);
});

// ---------------------------------------------------------------------------------------------
// Cross-check against the kernel's own segmentation (root only).
//
// In a throwaway namespace: sender TAP (IFF_VNET_HDR) -> bridge -> receiver TAP (no offloads).
// A superframe written into the sender is forwarded as one GSO skb; since the receiver has no
// TSO and no checksum offload, the kernel segments it (tcp_gso_segment) and completes every
// checksum before queueing it, so the receiver reads what toPlainFrames should emit, byte for
// byte.

const KERNEL_CASES: { name: string; spec: Spec }[] = [
  { name: "IPv4", spec: { payloadLen: 1448 * 3 + 100, gsoSize: 1448, tcpFlags: ACK | PSH } },
  {
    name: "IPv4 ECN, CWR/ECE/FIN/PSH",
    spec: { payloadLen: 5000, gsoSize: 1448, tcpFlags: ACK | PSH | FIN | ECE | CWR, ecn: true },
  },
  {
    name: "IPv4 IP and TCP options, id and seq wrap",
    spec: {
      payloadLen: 9000,
      gsoSize: 1400,
      tcpFlags: ACK,
      ipOptions: 8,
      tcpOptions: 12,
      ipId: 0xfffe,
      seq: 0xffffffff - 2000,
    },
  },
  {
    name: "IPv4 odd gso_size, ~64 KiB",
    spec: { payloadLen: 65535 - 40, gsoSize: 1001, tcpFlags: ACK },
  },
  {
    name: "IPv6",
    spec: { ipv6: true, payloadLen: 1428 * 5 + 7, gsoSize: 1428, tcpFlags: ACK | PSH },
  },
  { name: "IPv4 VLAN", spec: { vlan: true, payloadLen: 5000, gsoSize: 1400, tcpFlags: ACK | PSH } },
  {
    name: "IPv6 VLAN",
    spec: { vlan: true, ipv6: true, payloadLen: 5000, gsoSize: 1400, tcpFlags: ACK | FIN },
  },
  {
    name: "IPv6 ECN, timestamps, FIN",
    spec: {
      ipv6: true,
      ecn: true,
      payloadLen: 30000,
      gsoSize: 1416,
      tcpFlags: ACK | PSH | FIN | CWR | ECE,
      tcpOptions: 12,
    },
  },
];

/** Reads `count` frames from `tap` whose source MAC is the builder's, then checks for more. */
async function readFramesFrom(tap: Tap, count: number): Promise<Uint8Array[]> {
  const buf = new Uint8Array(70_000);
  const frames: Uint8Array[] = [];
  const deadline = Date.now() + 5000;
  const quietUntil = () => frames.length === count ? Date.now() + 100 : deadline;
  let stop = quietUntil();
  while (Date.now() < Math.min(stop, deadline)) {
    const n = tap.readInto(buf, 0);
    if (n < 0) {
      await tap.waitReadable(20);
      continue;
    }
    // Source MAC 52:54:00:ab:cd:ef (buildSuperframe); anything else is the namespace's own noise.
    if (n >= 12 && buf[6] === 0x52 && buf[9] === 0xab && buf[10] === 0xcd && buf[11] === 0xef) {
      frames.push(buf.slice(0, n));
      stop = quietUntil();
    }
  }
  return frames;
}

Deno.test({
  name: "toPlainFrames emits the kernel's own segments, byte for byte" + ROOT_ONLY,
  ignore: !IS_ROOT,
  async fn() {
    const ns = await Netns.create("seg");
    let sender: Tap | undefined;
    let receiver: Tap | undefined;
    try {
      // No IPv6 on the namespace's interfaces: no router solicitations or MLD to filter out.
      await ns.exec(
        "sysctl",
        "-qw",
        "net.ipv6.conf.all.disable_ipv6=1",
        "net.ipv6.conf.default.disable_ipv6=1",
      );
      sender = Tap.create({ name: uniqueIfName("sgs"), vnetHdr: true, offload: false });
      receiver = Tap.create({ name: uniqueIfName("sgr"), vnetHdr: false, offload: false });
      await ns.adopt(sender.name);
      await ns.adopt(receiver.name);
      await ns.ip("link", "add", "br0", "type", "bridge");
      for (const dev of [sender.name, receiver.name]) {
        await ns.ip("link", "set", dev, "master", "br0");
      }
      for (const dev of ["br0", sender.name, receiver.name]) await ns.ip("link", "set", dev, "up");

      for (const { name, spec } of KERNEL_CASES) {
        const built = buildSuperframe(spec);
        const ours = run(built.packet, 1500).frames.map((f) => f.subarray(10));
        assertEquals(sender.write(built.packet), built.packet.length, `${name}: write`);
        const theirs = await readFramesFrom(receiver, ours.length);
        assertEquals(theirs.length, ours.length, `${name}: kernel segment count`);
        theirs.forEach((kernel, i) => {
          assertEquals(ours[i].length, kernel.length, `${name}: segment ${i} length`);
          const at = kernel.findIndex((b, k) => b !== ours[i][k]);
          assertEquals(at, -1, `${name}: segment ${i} first differing byte`);
        });
      }
    } finally {
      sender?.close();
      receiver?.close();
      await ns.destroy();
    }
  },
});
