import { assert, assertEquals } from "../../support/assert.ts";
import { markCapturedOffloads } from "../../../agent/device/capture_offload.ts";
import { toPlainFrames } from "../../../agent/device/segment.ts";
import { internetChecksum } from "../../../agent/device/checksum.ts";
import { readVnetHeader } from "../../../agent/device/vnet_header.ts";

/** An IPv4/TCP packet (header zeroed) with `payload` bytes and a correct checksum. */
function tcp4(payload: number): Uint8Array {
  const total = 20 + 20 + payload;
  const p = new Uint8Array(10 + 14 + total);
  const f = 10;
  p.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00], f);
  const ip = f + 14;
  p.set(
    [0x45, 0, total >> 8, total & 0xff, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2],
    ip,
  );
  const ipSum = internetChecksum(p.subarray(ip, ip + 20));
  p[ip + 10] = ipSum >> 8;
  p[ip + 11] = ipSum & 0xff;
  const t = ip + 20;
  p.set([0x30, 0x39, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff], t);
  for (let i = 0; i < payload; i++) p[t + 20 + i] = (i * 13) & 0xff;
  p.set(tcpChecksum(p, ip, t), t + 16);
  return p;
}

function tcpChecksum(p: Uint8Array, ip: number, t: number): number[] {
  const len = p.length - t;
  const pseudo = new Uint8Array(12);
  pseudo.set(p.subarray(ip + 12, ip + 20));
  pseudo[9] = 6;
  pseudo[10] = len >> 8;
  pseudo[11] = len & 0xff;
  const copy = p.slice(t);
  copy[16] = copy[17] = 0;
  const both = new Uint8Array(12 + copy.length);
  both.set(pseudo);
  both.set(copy, 12);
  const s = internetChecksum(both);
  return [s >> 8, s & 0xff];
}

Deno.test("captured TCP frame: marked NEEDS_CSUM, and completing it restores the checksum", () => {
  const original = tcp4(100);
  const p = original.slice();
  p[10 + 14 + 20 + 16] ^= 0x5a; // a captured frame may carry only a partial checksum
  assert(markCapturedOffloads(p, 1500));
  const h = readVnetHeader(p);
  assertEquals([h.flags, h.gsoType, h.csumStart, h.csumOffset], [1, 0, 34, 16]);
  const out: Uint8Array[] = [];
  assert(toPlainFrames(p, 1500, (f) => out.push(f.slice())));
  assertEquals(out.length, 1);
  assertEquals([...out[0].subarray(10)], [...original.subarray(10)]);
});

Deno.test("captured oversized TCP frame becomes a superframe cut to the MTU with valid checksums", () => {
  const p = tcp4(9000);
  assert(markCapturedOffloads(p, 1500));
  const h = readVnetHeader(p);
  assertEquals([h.gsoType, h.gsoSize], [1, 1460]);
  const out: Uint8Array[] = [];
  assert(toPlainFrames(p, 1500, (f) => out.push(f.slice())));
  assertEquals(out.length, Math.ceil(9000 / 1460));
  for (const s of out) {
    assert(s.length - 10 - 14 <= 1500, "segment exceeds the MTU");
    assertEquals(tcpChecksum(s, 24, 44), [s[44 + 16], s[44 + 17]]);
  }
});

Deno.test("ARP, ICMP, fragments and IPv4 UDP without checksum are left alone", () => {
  const arp = new Uint8Array(10 + 42);
  arp[22] = 0x08;
  arp[23] = 0x06;
  assertEquals(markCapturedOffloads(arp, 1500), false);
  const frag = tcp4(10);
  frag[24 + 6] = 0x20; // more fragments
  assertEquals(markCapturedOffloads(frag, 1500), false);
  const icmp = tcp4(10);
  icmp[24 + 9] = 1;
  assertEquals(markCapturedOffloads(icmp, 1500), false);
  assertEquals(readVnetHeader(icmp).flags, 0);
});

Deno.test("truncated and random captures never throw", () => {
  let seed = 7;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) & 0xff;
  for (let i = 0; i < 5000; i++) {
    const base = tcp4(rnd());
    const p = base.subarray(0, 10 + (rnd() * 3) % (base.length - 9));
    for (let k = rnd() % 4; k > 0; k--) p[rnd() % p.length] = rnd();
    markCapturedOffloads(p, 576 + rnd());
  }
});
