import { assert, assertEquals, assertThrows } from "../support/assert.ts";
import {
  MAX_BYTES_PER_SEC,
  MAX_RTT_MS,
  UnderlayBook,
  type UnderlayEstimate,
  type UnderlayRefusal,
  type UnderlaySource,
} from "../../adapt/underlay.ts";
import { planPlacement } from "../../adapt/placement.ts";
import { hostPair } from "../../adapt/planner.ts";
import { prng } from "../support/topologies.ts";

Deno.test("RTT: EWMA with gain 1/8 and the min of the window", () => {
  const book = new UnderlayBook({ windowMs: 1000 });
  for (const [ms, t] of [[40, 0], [8, 100], [24, 200]]) {
    book.observeRtt("a", "b", ms, t, "keepalive");
  }
  const e = book.estimate("b", "a", 250)!;
  const ewma = 40 + (8 - 40) / 8;
  assertEquals(e.rttMs, ewma + (24 - ewma) / 8);
  assertEquals(e.rttMinMs, 8);
  assertEquals([e.bandwidthBytesPerSec, e.throughputBytesPerSec, e.bandwidthAgeMs], [
    null,
    null,
    null,
  ]);
  assertEquals([e.ageMs, e.source], [50, "keepalive"]);
  // Windows are [0, 1000), [1000, 2000), ...: at 2100 the 8 ms of window 0 is forgotten.
  book.observeRtt("a", "b", 30, 1500, "keepalive");
  assertEquals(book.estimate("a", "b", 1900)!.rttMinMs, 8, "one window back still counts");
  book.observeRtt("a", "b", 35, 2100, "fast-path");
  assertEquals(book.estimate("a", "b", 2100)!.rttMinMs, 30);
  assertEquals(book.estimate("a", "b", 2100)!.source, "fast-path");
});

Deno.test("throughput: EWMA with gain 1/4, max of the window, and its own age", () => {
  const book = new UnderlayBook({ windowMs: 10_000 });
  book.observeThroughput("a", "b", 4e6, 0, "star");
  book.observeThroughput("a", "b", 12e6, 1000, "fast-path");
  book.observeRtt("a", "b", 3, 5000, "keepalive");
  const e = book.estimate("a", "b", 6000)!;
  assertEquals(e.throughputBytesPerSec, 6e6);
  assertEquals(e.bandwidthBytesPerSec, 12e6);
  assertEquals([e.ageMs, e.bandwidthAgeMs, e.source], [1000, 5000, "keepalive"]);
  // Nothing newer: the newest window's max stands, and bandwidthAgeMs says how old it is.
  assertEquals(book.estimate("a", "b", 90_000)!.bandwidthBytesPerSec, 12e6);
});

Deno.test("bad samples are refused, counted by reason, and change nothing", () => {
  const book = new UnderlayBook();
  book.observeRtt("a", "b", 10, 1000, "keepalive");
  book.observeThroughput("a", "b", 1e6, 1000, "star");
  const before = book.estimate("a", "b", 1000);
  const refused: [boolean, UnderlayRefusal][] = [
    [book.observeRtt("a", "b", NaN, 2000, "keepalive"), "rtt out of range"],
    [book.observeRtt("a", "b", -1, 2000, "keepalive"), "rtt out of range"],
    [book.observeRtt("a", "b", MAX_RTT_MS + 1, 2000, "keepalive"), "rtt out of range"],
    [book.observeThroughput("a", "b", 0, 2000, "star"), "throughput out of range"],
    [book.observeThroughput("a", "b", Infinity, 2000, "star"), "throughput out of range"],
    [
      book.observeThroughput("a", "b", MAX_BYTES_PER_SEC * 2, 2000, "star"),
      "throughput out of range",
    ],
    [book.observeRtt("a", "a", 5, 2000, "keepalive"), "bad host pair"],
    [book.observeRtt("", "b", 5, 2000, "keepalive"), "bad host pair"],
    [book.observeRtt("a|x", "b", 5, 2000, "keepalive"), "bad host pair"],
    [book.observeRtt("a", "b", 5, 2000, "gossip" as UnderlaySource), "bad source"],
    [book.observeRtt("a", "b", 5, NaN, "keepalive"), "bad time"],
    [book.observeThroughput("a", "b", 1e6, 999, "star"), "time went backwards"],
  ];
  const expected = { ...new UnderlayBook().refused };
  assert(Object.values(expected).every((n) => n === 0), "a new book has refused nothing");
  for (const [taken, reason] of refused) {
    assert(!taken, reason);
    expected[reason]++;
  }
  assertEquals(book.refused, expected);
  assertEquals(book.estimate("a", "b", 1000), before);
  assertEquals(book.size, 1);
  // The bounds themselves are samples.
  assert(book.observeRtt("a", "b", 0, 3000, "probe"));
  assert(book.observeRtt("a", "b", MAX_RTT_MS, 3000, "probe"));
  assert(book.observeThroughput("a", "b", MAX_BYTES_PER_SEC, 3000, "probe"));
});

Deno.test("the book holds at most maxPairs; the least recently measured goes first", () => {
  const book = new UnderlayBook({ maxPairs: 3 });
  book.observeRtt("h1", "h2", 1, 0, "keepalive");
  book.observeRtt("h1", "h3", 1, 1, "keepalive");
  book.observeRtt("h1", "h4", 1, 2, "keepalive");
  book.observeRtt("h1", "h2", 1, 3, "keepalive"); // h1|h2 is young again
  book.observeRtt("h1", "h5", 1, 4, "keepalive");
  assertEquals(book.estimates(5).map((e) => e.pair), ["h1|h2", "h1|h4", "h1|h5"]);
  assertEquals([book.size, book.evicted], [3, 1]);
  assertThrows(() => new UnderlayBook({ maxPairs: 0 }), RangeError, "maxPairs must be an integer");
  assertThrows(() => new UnderlayBook({ windowMs: NaN }), RangeError, "windowMs must be");
});

Deno.test("probes: never-measured pairs first, then the stalest, bounded, not repeated", () => {
  const book = new UnderlayBook();
  const hosts = ["h1", "h2", "h3", "h4"];
  const stale = { staleMs: 60_000, maxProbes: 3 };
  book.observeThroughput("h1", "h2", 1e6, 0, "star");
  book.observeThroughput("h1", "h3", 1e6, 10_000, "star");
  book.observeThroughput("h1", "h4", 1e6, 100_000, "fast-path");
  book.observeRtt("h2", "h3", 1, 100_000, "keepalive"); // an RTT says nothing about bandwidth
  assertEquals(book.pairsNeedingProbe(hosts, 100_000, stale), ["h2|h3", "h2|h4", "h3|h4"]);
  assertEquals(
    book.pairsNeedingProbe(hosts, 100_000, { ...stale, maxProbes: 6 }),
    ["h2|h3", "h2|h4", "h3|h4", "h1|h2", "h1|h3"],
  );
  for (const pair of ["h2|h3", "h2|h4", "h3|h4"]) {
    book.probeSent(...pair.split("|") as [string, string], 100_000);
  }
  assertEquals(book.pairsNeedingProbe(hosts, 110_000, stale), ["h1|h2", "h1|h3"]);
  book.observeThroughput("h1", "h2", 2e6, 110_000, "probe");
  assertEquals(book.pairsNeedingProbe(hosts, 120_000, stale), ["h1|h3"]);
  // A probe that never answered is asked for again once staleMs has passed.
  assertEquals(book.pairsNeedingProbe(hosts, 160_000, stale), ["h2|h3", "h2|h4", "h3|h4"]);
  assertEquals(book.pairsNeedingProbe(["h1"], 0, stale), []);
  assertThrows(() => book.pairsNeedingProbe(["h1", "b|c"], 0, stale), RangeError, "bad host name");
});

Deno.test("pathCosts feeds the placement planner; stale and RTT-only pairs are unknown", () => {
  const book = new UnderlayBook();
  for (const [a, b, bw] of [["h1", "h2", 2e6], ["h2", "h3", 100e6]] as const) {
    book.observeRtt(a, b, 5, 0, "keepalive");
    book.observeThroughput(a, b, bw, 0, "fast-path");
  }
  book.observeRtt("h1", "h3", 5, 0, "keepalive");
  book.observeThroughput("h3", "h4", 100e6, -100_000, "star");
  book.observeRtt("h3", "h4", 5, -100_000, "keepalive");
  const costs = book.pathCosts(1000, { maxAgeMs: 60_000 });
  assertEquals(costs(hostPair("h1", "h2")), { bandwidthBytesPerSec: 2e6, rttMs: 5 });
  assertEquals([costs("h1|h3"), costs("h3|h4")], [null, null]);
  // m1 (h1) and m2 (h2) talk at 1 MB/s over 2 MB/s; h3 is fast to h2 and has room, but
  // h1|h3 is unknown: m1 may go to h3 only because it has no other peer on h1.
  const plan = planPlacement({
    edges: [{ a: "m1", b: "m2", bytesPerSec: 1e6 }],
    vmHost: new Map([["m1", "h1"], ["m2", "h2"]]),
    slots: new Map([["h1", 1], ["h2", 1], ["h3", 1]]),
    underlay: costs,
    settings: { maxMoves: 2, minGain: 0.1, moveCost: 0 },
  });
  assertEquals(plan.moves.map((m) => [m.vm, m.to]), [["m1", "h3"]]);
});

/** The slow, obvious model: every sample kept, the estimate computed from the list. */
class ReferenceBook {
  samples = new Map<string, { kind: "rtt" | "bw"; v: number; t: number; source: string }[]>();
  constructor(readonly windowMs: number) {}
  add(kind: "rtt" | "bw", a: string, b: string, v: number, t: number, source: string): boolean {
    const ok = kind === "rtt" ? v >= 0 && v <= MAX_RTT_MS : v > 0 && v <= MAX_BYTES_PER_SEC;
    const pair = hostPair(a, b);
    const list = this.samples.get(pair) ?? [];
    if (!ok || list.some((s) => s.t > t)) return false;
    this.samples.set(pair, [...list, { kind, v, t, source }]);
    return true;
  }
  estimate(pair: string, now: number): UnderlayEstimate | null {
    const list = this.samples.get(pair);
    if (!list) return null;
    const of = (kind: string) => list.filter((s) => s.kind === kind);
    const ewma = (xs: { v: number }[], gain: number) =>
      xs.length === 0 ? null : xs.slice(1).reduce((e, s) => e + gain * (s.v - e), xs[0].v);
    const recent = (xs: { v: number; t: number }[], pick: (...v: number[]) => number) => {
      if (xs.length === 0) return null;
      const w = (t: number) => Math.floor(t / this.windowMs);
      const newest = w(xs[xs.length - 1].t);
      const inWindow = xs.filter((s) =>
        newest === w(now) ? w(s.t) >= w(now) - 1 : w(s.t) === newest
      );
      return pick(...inWindow.map((s) => s.v));
    };
    const rtt = of("rtt");
    const bw = of("bw");
    const last = list[list.length - 1];
    return {
      pair,
      rttMs: ewma(rtt, 1 / 8),
      rttMinMs: recent(rtt, Math.min),
      rttAgeMs: rtt.length ? now - rtt[rtt.length - 1].t : null,
      bandwidthBytesPerSec: recent(bw, Math.max),
      throughputBytesPerSec: ewma(bw, 1 / 4),
      ageMs: now - last.t,
      bandwidthAgeMs: bw.length ? now - bw[bw.length - 1].t : null,
      source: last.source as UnderlaySource,
      rttSource: rtt.length ? rtt[rtt.length - 1].source as UnderlaySource : null,
    };
  }
}

Deno.test("matches the keep-every-sample reference on 5,000 random samples", () => {
  const random = prng(11);
  const book = new UnderlayBook({ windowMs: 5000 });
  const ref = new ReferenceBook(5000);
  const hosts = ["h1", "h2", "h3", "h4"];
  const sources: UnderlaySource[] = ["keepalive", "fast-path", "star", "probe"];
  let now = 0;
  for (let i = 0; i < 5000; i++) {
    now += Math.floor(random() * 2000) - 100; // now and then a little back in time
    const a = hosts[Math.floor(random() * 4)];
    let b = hosts[Math.floor(random() * 4)];
    if (a === b) b = a === "h1" ? "h2" : "h1";
    const source = sources[Math.floor(random() * 4)];
    const rtt = random() < 0.5;
    const v = rtt ? random() * 100 - 5 : random() * 1e8 - 1e6;
    const took = rtt
      ? book.observeRtt(a, b, v, now, source)
      : book.observeThroughput(a, b, v, now, source);
    assertEquals(took, ref.add(rtt ? "rtt" : "bw", a, b, v, now, source), `sample ${i}`);
    const pair = hostPair(a, b);
    const got = book.estimate(a, b, now);
    const want = ref.estimate(pair, now);
    const close = (x: number | null, y: number | null) =>
      x === y || (x !== null && y !== null && Math.abs(x - y) <= 1e-9 * Math.abs(y));
    assert(got !== null && want !== null);
    for (const k of Object.keys(want) as (keyof UnderlayEstimate)[]) {
      const [g, w] = [got[k], want[k]];
      assert(
        typeof g === "number" ? close(g, w as number) : g === w,
        `sample ${i} ${k}: ${g} vs ${w}`,
      );
    }
  }
  const refusedTotal = Object.values(book.refused).reduce((x, y) => x + y, 0);
  assert(refusedTotal > 100, "the sequence exercised refusals");
});
