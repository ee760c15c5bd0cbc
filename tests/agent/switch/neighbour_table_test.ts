import { assertEquals } from "../../support/assert.ts";
import { type ClaimResult, NeighbourTable } from "../../../agent/switch/neighbour_table.ts";
import { prng } from "../../support/topologies.ts";

const OPTIONS = { maxEntries: 6, ageMs: 10_000, contestMs: 2_000, maxPerMac: 3 };

interface Row {
  ip: number;
  mac: number;
  confirmedAt: number;
  contestedUntil: number;
}

/** The obviously-correct reference: a list in order of last confirmation, scanned whole. */
class Reference {
  rows: Row[] = [];
  readonly o = OPTIONS;

  claim(ip: number, mac: number, now: number): ClaimResult {
    const row = this.rows.find((r) => r.ip === ip);
    const aged = (r: Row) => now - r.confirmedAt > this.o.ageMs;
    const perMacFull = () => {
      if (this.rows.filter((r) => r.mac === mac).length < this.o.maxPerMac) return false;
      this.rows = this.rows.filter((r) => !aged(r));
      return this.rows.filter((r) => r.mac === mac).length >= this.o.maxPerMac;
    };
    const toTail = (r: Row) => (this.rows = [...this.rows.filter((x) => x !== r), r]);
    if (!row) {
      if (perMacFull()) return "macFull";
      if (this.rows.length >= this.o.maxEntries) {
        this.rows = this.rows.filter((r) => !aged(r));
        if (this.rows.length >= this.o.maxEntries) this.rows.shift();
      }
      this.rows.push({ ip, mac, confirmedAt: now, contestedUntil: 0 });
      return "new";
    }
    if (row.mac === mac) {
      row.confirmedAt = now;
      toTail(row);
      return "refreshed";
    }
    if (!aged(row) && now - row.confirmedAt < this.o.contestMs) {
      row.contestedUntil = now + this.o.contestMs;
      return "refused";
    }
    if (perMacFull()) return "macFull";
    Object.assign(row, { mac, confirmedAt: now });
    toTail(row);
    return "replaced";
  }

  lookup(ip: number, now: number) {
    const r = this.rows.find((x) => x.ip === ip);
    return r && now - r.confirmedAt <= this.o.ageMs
      ? { mac: r.mac, contestedUntil: r.contestedUntil }
      : undefined;
  }
}

Deno.test("neighbour table agrees with a list-scanning reference on random claims", () => {
  const random = prng(23);
  const pick = (n: number) => Math.floor(random() * n);
  for (let round = 0; round < 300; round++) {
    const t = new NeighbourTable(OPTIONS);
    const ref = new Reference();
    let now = 0;
    for (let step = 0; step < 200; step++) {
      now += pick(4) === 0 ? pick(12_000) : pick(1_500);
      const ip = pick(12);
      if (pick(20) === 0) {
        t.forget(ip);
        ref.rows = ref.rows.filter((r) => r.ip !== ip);
        continue;
      }
      const mac = pick(5);
      assertEquals(t.claim(ip, mac, now), ref.claim(ip, mac, now), `round ${round} step ${step}`);
      for (let i = 0; i < 12; i++) {
        const e = t.lookup(i, now);
        const got = e && { mac: e.mac, contestedUntil: e.contestedUntil };
        assertEquals(got, ref.lookup(i, now), `round ${round} step ${step} ip ${i}`);
      }
      if (t.size > OPTIONS.maxEntries) throw new Error(`over its bound: ${t.size}`);
    }
  }
});

Deno.test("neighbour table counts conflicts, replacements, ageing and eviction", () => {
  const t = new NeighbourTable(OPTIONS);
  t.claim(1, 0xa, 0);
  assertEquals(t.claim(1, 0xb, 1_000), "refused");
  assertEquals(t.lookup(1, 1_000)?.contestedUntil, 3_000);
  assertEquals(t.claim(1, 0xb, 2_500), "replaced", "the owner was quiet for contestMs");
  assertEquals(t.claim(1, 0xa, 20_000), "replaced", "an aged binding is no conflict");
  assertEquals([t.stats.conflicts, t.stats.replaced], [2, 2]);
  for (let ip = 2; ip <= 4; ip++) t.claim(ip, 0xc, 20_000);
  assertEquals(t.claim(5, 0xc, 20_000), "macFull");
  assertEquals(t.claim(5, 0xc, 40_000), "new", "its aged bindings made room");
  assertEquals(t.stats.aged, 4);
  for (let ip = 6; ip <= 11; ip++) t.claim(ip, ip, 40_000 + ip);
  assertEquals([t.size, t.stats.evicted], [6, 1]);
  assertEquals(t.lookup(5, 40_100), undefined, "the least recently confirmed went first");
  t.setRouter(6, 6, true);
  t.setRouter(7, 99, true); // not the owner: ignored
  assertEquals([t.lookup(6, 40_100)?.router, t.lookup(7, 40_100)?.router], [true, null]);
});
