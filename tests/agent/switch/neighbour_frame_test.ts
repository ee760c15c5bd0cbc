/**
 * The ARP/ND views: what they read from well-formed messages, what they refuse, and fuzzing
 * (random and mutated frames through the parser, the suppressor and a 50-port proxy switch
 * never throw, and every advertisement the proxy builds carries a correct checksum).
 */
import { assert, assertEquals } from "../../support/assert.ts";
import {
  formatIp,
  newNeighbourMessage,
  parseNeighbour,
} from "../../../agent/switch/neighbour_frame.ts";
import { NeighbourSuppressor } from "../../../agent/switch/neighbour_suppression.ts";
import { Switch } from "../../../agent/switch/switch.ts";
import { arp, icmpv6Checksum, nd, v4, v6Key } from "../../support/neighbour_frames.ts";
import { prng } from "../../support/topologies.ts";
import { vmMac } from "../../support/frames.ts";

const E = 24;

Deno.test("parseNeighbour reads ARP and ND claims, targets and flags", () => {
  const m = newNeighbourMessage();
  assertEquals(parseNeighbour(arp({ op: 1, sha: 7, spa: "10.0.0.1", tpa: "10.0.0.2" }), m), "ok");
  assertEquals([m.family, m.request, m.toGroup, m.claimMac], [4, true, true, 7]);
  assertEquals([m.claimIp, m.targetIp], [v4("10.0.0.1"), v4("10.0.0.2")]);
  parseNeighbour(arp({ op: 2, sha: 7, spa: "10.0.0.1", tpa: "10.0.0.2", tha: 8 }), m);
  assertEquals([m.request, m.toGroup, m.targetIp], [false, false, null]);
  parseNeighbour(arp({ op: 1, sha: 7, spa: "0.0.0.0", tpa: "10.0.0.2", dst: 9 }), m);
  assertEquals([m.claimIp, m.toGroup], [null, false], "a probe claims nothing; unicast");
  parseNeighbour(nd({ type: 135, src: 7, srcIp: "fe80::1", target: "fd00::2" }), m);
  assertEquals([m.family, m.request, m.toGroup, m.claimMac], [6, true, true, 7]);
  assertEquals([m.claimIp, m.targetIp], [v6Key("fe80::1"), v6Key("fd00::2")]);
  parseNeighbour(
    nd({ type: 135, src: 7, srcIp: "fe80::1", target: "fd00::2", dstIp: "ff02::1" }),
    m,
  );
  assertEquals(m.toGroup, false, "not the target's solicited-node group");
  parseNeighbour(nd({ type: 136, src: 7, srcIp: "fd00::2", target: "fd00::2", flags: 0xe0 }), m);
  assertEquals([m.request, m.claimIp, m.claimMac, m.router], [false, v6Key("fd00::2"), 7, true]);
  assertEquals(formatIp(v6Key("fd00::2")), "fd00::2");
  assertEquals(formatIp(v6Key("1:0:0:2::3")), "1:0:0:2::3");
});

Deno.test("parseNeighbour: other frames are none, broken ARP and ND are malformed", () => {
  const m = newNeighbourMessage();
  const ns = () => nd({ type: 135, src: 7, srcIp: "fe80::1", target: "fd00::2" });
  assertEquals(parseNeighbour(new Uint8Array(E + 60), m), "none");
  assertEquals(
    parseNeighbour(arp({ op: 1, sha: 7, spa: "1.1.1.1", tpa: "1.1.1.2" }).subarray(0, 50), m),
    "malformed",
  );
  const badOp = arp({ op: 1, sha: 7, spa: "1.1.1.1", tpa: "1.1.1.2" });
  badOp[E + 7] = 3;
  assertEquals(parseNeighbour(badOp, m), "malformed");
  const udp = ns();
  udp[E + 6] = 17;
  assertEquals(parseNeighbour(udp, m), "none");
  const zeroOption = ns();
  zeroOption[E + 40 + 25] = 0;
  assertEquals(parseNeighbour(zeroOption, m), "malformed", "an option of length 0");
  const longOption = ns();
  longOption[E + 40 + 25] = 2;
  assertEquals(parseNeighbour(longOption, m), "malformed", "an option past the payload");
  const truncated = ns().subarray(0, E + 40 + 30);
  assertEquals(parseNeighbour(truncated, m), "malformed", "payload length past the frame");
  const dadWithOption = nd({ type: 135, src: 7, srcIp: "::", target: "fd00::2" });
  assertEquals(parseNeighbour(dadWithOption, m), "malformed");
  const multicastTarget = nd({ type: 136, src: 7, srcIp: "fd00::2", target: "ff02::1" });
  assertEquals(parseNeighbour(multicastTarget, m), "malformed");
});

function valid(random: () => number): Uint8Array {
  const a = 1 + Math.floor(random() * 8), b = 1 + Math.floor(random() * 8);
  switch (Math.floor(random() * 4)) {
    case 0:
      return arp({ op: 1, sha: vmMac(a), spa: `10.0.0.${a}`, tpa: `10.0.0.${b}` });
    case 1:
      return arp({ op: 2, sha: vmMac(a), spa: `10.0.0.${a}`, tpa: `10.0.0.${b}`, tha: vmMac(b) });
    case 2:
      return nd({ type: 135, src: vmMac(a), srcIp: `fd00::${a}`, target: `fd00::${b}` });
    default:
      return nd({
        type: 136,
        src: vmMac(a),
        srcIp: `fd00::${a}`,
        target: `fd00::${a}`,
        flags: random() < 0.5 ? 0xa0 : 0x20,
      });
  }
}

function mutate(bytes: Uint8Array, random: () => number): Uint8Array {
  const len = random() < 0.7 ? bytes.length : Math.floor(random() * (bytes.length + 16));
  const b = new Uint8Array(len);
  b.set(bytes.subarray(0, len));
  for (let k = Math.floor(random() * 4); k > 0 && len > 0; k--) {
    b[Math.floor(random() * len)] = random() * 256;
  }
  return b;
}

Deno.test("fuzz: 30,000 random and mutated frames never throw, answers are well formed", () => {
  const random = prng(2323);
  const m = newNeighbourMessage();
  const lookup = (mac: number) => `host:${mac % 4}`;
  const n = new NeighbourSuppressor({
    macs: { lookup },
    maxEntries: 64,
    ageMs: 5_000,
    maxPerMac: 4,
  });
  const sw = new Switch({ role: "proxy", maxMacs: 64, macAgeMs: 5_000, moveQuietMs: 100 });
  sw.attach({ name: "device", kind: "device", send: () => true });
  for (let i = 0; i < 49; i++) sw.attach({ name: `host:${i}`, kind: "host", send: () => true });
  let answers = 0;
  for (let i = 0; i < 30_000; i++) {
    const now = i * 3;
    let p: Uint8Array;
    if (i % 3 === 0) {
      p = Uint8Array.from({ length: Math.floor(random() * 120) }, () => random() * 256);
      if (p.length > E + 41 && random() < 0.7) {
        p.set(random() < 0.5 ? [0x08, 0x06] : [0x86, 0xdd, 0x60], E - 2);
        p[E + 6] = 58;
        p[E + 40] = random() < 0.5 ? 135 : 136;
      }
    } else {
      p = mutate(valid(random), random);
    }
    parseNeighbour(p, m);
    const verdict = n.inspect(p, `host:${Math.floor(random() * 4)}`, now);
    if (verdict === "answer") {
      answers++;
      const r = n.reply;
      if (r[E - 1] === 0xdd) assertEquals((r[E + 42] << 8) | r[E + 43], icmpv6Checksum(r));
      else assertEquals(r.length, E + 28);
    }
    sw.forward(p, `host:${Math.floor(random() * 49)}`, now);
    assert(n.table.size <= 64 && sw.neighbours!.table.size <= 64 * 4);
  }
  assert(answers > 100, `the fuzz reached the answers (${answers})`);
});
