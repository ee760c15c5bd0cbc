/**
 * The proxy's underlay service against fake sources: star links whose counters grow, a VM
 * matrix, VMs on hosts; what it samples, what the planner is told, and the bottleneck named.
 */
import { assert, assertEquals } from "../support/assert.ts";
import {
  FULL_VIEW_HOSTS,
  MIN_PATH_RTT_GAP_MS,
  STAR,
  UnderlayService,
  type UnderlaySources,
} from "../../proxy/underlay_service.ts";
import { MAX_RTT_MS } from "../../adapt/underlay.ts";

const A = "02:00:00:00:00:01";
const B = "02:00:00:00:00:02";
const C = "02:00:00:00:00:03";

function fake() {
  const links = new Map([
    ["h1", { rttMs: 2 as number | null, txBytes: 0, rxBytes: 0 }],
    ["h2", { rttMs: 3 as number | null, txBytes: 0, rxBytes: 0 }],
    ["h3", { rttMs: 40 as number | null, txBytes: 0, rxBytes: 0 }],
  ]);
  const vms = new Map([
    [A, { host: "h1", since: 0 }],
    [B, { host: "h2", since: 0 }],
    [C, { host: "h3", since: 0 }],
  ]);
  let matrix: { src: string; dst: string; bytesPerSec: number }[] = [];
  const direct = new Set<string>();
  const sources: UnderlaySources = {
    starLinks: () => links,
    matrix: () => matrix,
    vm: (mac: string) => vms.get(mac) ?? null,
    direct: (pair) => direct.has(pair),
  };
  return { links, vms, direct, sources, setMatrix: (m: typeof matrix) => matrix = m };
}

Deno.test("underlay service: star links from keepalives and bytes; host pairs from VM traffic", () => {
  const f = fake();
  const u = new UnderlayService(f.sources, { settleMs: 10_000 });
  u.sample(100_000);
  // One second later: h1 moved 10 MB each way over its star link, h2 5 MB, h3 1 MB.
  for (const [h, mb] of [["h1", 10e6], ["h2", 5e6], ["h3", 1e6]] as const) {
    const l = f.links.get(h)!;
    l.txBytes += mb;
    l.rxBytes += mb;
  }
  f.setMatrix([
    { src: A, dst: B, bytesPerSec: 3e6 },
    { src: B, dst: A, bytesPerSec: 2e6 },
    { src: A, dst: C, bytesPerSec: 500 }, // below what says anything about a path
  ]);
  f.direct.add("h1|h2");
  u.sample(101_000);
  const star = u.book.estimate(STAR, "h1", 101_000)!;
  assertEquals([star.rttMs, star.bandwidthBytesPerSec, star.source], [2, 20e6, "star"]);
  const pair = u.book.estimate("h1", "h2", 101_000)!;
  assertEquals([pair.bandwidthBytesPerSec, pair.source], [5e6, "fast-path"]);
  assertEquals(u.book.estimate("h1", "h3", 101_000), null, "500 B/s is not a sample");

  const planned = new Map(u.plannedPaths(["h1", "h2", "h3"], 101_000).map((p) => [p.pair, p]));
  // h1|h2: its own 5 MB/s is below its star path's min(20, 10) MB/s: the star is taken.
  assertEquals(planned.get("h1|h2")!.bandwidthBytesPerSec, 10e6);
  assertEquals(planned.get("h1|h2")!.via, "star");
  assertEquals(planned.get("h1|h2")!.rttMs, 5, "the two star links' RTTs");
  assertEquals(planned.get("h1|h2")!.rttVia, "star", "no fast-path RTT reported yet");
  // h1|h3 never carried anything itself: its star path, narrowest at h3's star link.
  assertEquals(planned.get("h1|h3")!.bandwidthBytesPerSec, 2e6);
  assert(planned.get("h1|h3")!.bottleneck.includes("the proxy"), planned.get("h1|h3")!.bottleneck);
  const costs = u.pathCosts(["h1", "h2", "h3"], 101_000);
  assertEquals(costs("h2|h3"), { bandwidthBytesPerSec: 2e6, rttMs: 43 });

  const view = u.view(["h1", "h2", "h3"], 101_000);
  assertEquals(view.pairs.map((p) => `${p.pair}:${p.kind}`), [
    "(proxy)|h1:star link",
    "(proxy)|h2:star link",
    "(proxy)|h3:star link",
    "h1|h2:host pair",
  ]);
  assertEquals(view.unmeasured, ["h1|h3", "h2|h3"]);
  assertEquals(view.proxy, { bytesPerSec: 32e6, bestBytesPerSec: 32e6 });
});

Deno.test("underlay service: a VM that moved lately is left out; a replaced link is not a sample", () => {
  const f = fake();
  const u = new UnderlayService(f.sources, { settleMs: 10_000 });
  u.sample(100_000);
  f.vms.set(B, { host: "h3", since: 95_000 });
  f.setMatrix([{ src: A, dst: B, bytesPerSec: 3e6 }]);
  f.links.get("h1")!.txBytes = 1e6;
  u.sample(101_000);
  assertEquals(u.book.estimate("h1", "h3", 101_000), null, "B's rates are partly from h2");
  u.sample(106_000);
  assertEquals(u.book.estimate("h1", "h3", 106_000)?.bandwidthBytesPerSec, 3e6, "settled");
  // h1's link was replaced: its counters start again from 0.
  f.links.get("h1")!.txBytes = 0;
  const before = u.book.estimate(STAR, "h1", 106_000)!.bandwidthBytesPerSec;
  u.sample(107_000);
  assertEquals(u.book.estimate(STAR, "h1", 107_000)!.bandwidthBytesPerSec, before);
  assertEquals(u.book.refused["throughput out of range"], 0, "no negative rate offered");
});

Deno.test("underlay service: a pair that carried more than its star path is priced by itself", () => {
  const f = fake();
  const u = new UnderlayService(f.sources);
  u.sample(100_000);
  f.links.get("h1")!.txBytes = 1e6;
  f.links.get("h2")!.txBytes = 1e6;
  f.setMatrix([{ src: A, dst: B, bytesPerSec: 50e6 }]);
  f.direct.add("h1|h2");
  u.sample(101_000);
  const [p] = u.plannedPaths(["h1", "h2"], 101_000);
  assertEquals([p.bandwidthBytesPerSec, p.via, p.bottleneck], [50e6, "pair", "its fast path"]);
});

Deno.test("underlay service: a host's fast-path RTTs count only for its own pairs with a fast path up", () => {
  const f = fake();
  const u = new UnderlayService(f.sources);
  f.direct.add("h1|h2");
  // h3 speaks for h1|h2 (not its pair), h1 for h3 (no fast path), for itself, twice for h2,
  // and with values no path has: only the first h2 entry is taken.
  assertEquals(u.observePathRtts("h3", [["h2", 1]], 100_000), 0);
  assertEquals(u.book.estimate("h1", "h2", 100_000), null, "h3 cannot claim h1|h2");
  const taken = u.observePathRtts("h1", [
    ["h2", 0.8],
    ["h3", 0.5],
    ["h1", 0.1],
    ["h2", 0.2],
  ], 100_000);
  assertEquals(taken, 1);
  assertEquals(u.observePathRtts("h2", [["h1", -1]], 100_000), 0);
  assertEquals(u.observePathRtts("h4", [["h1", MAX_RTT_MS + 1]], 100_000), 0);
  assertEquals(u.observePathRtts("h5", [["h1", NaN]], 100_000), 0);
  assertEquals(u.pathRttRefused, {
    "no fast path": 2,
    "own name": 1,
    "duplicate peer": 1,
    "rtt out of range": 3,
    "too often": 0,
  });
  const e = u.book.estimate("h1", "h2", 100_000)!;
  assertEquals([e.rttMs, e.source, e.bandwidthBytesPerSec], [0.8, "fast-path", null]);
  assertEquals(u.book.refused["rtt out of range"], 0, "refused before the book");

  // A host that reports again within MIN_PATH_RTT_GAP_MS is refused whole, and counted.
  assertEquals(u.observePathRtts("h1", [["h2", 9], ["h3", 9]], 100_000 + 100), 0);
  assertEquals(u.pathRttRefused["too often"], 2);
  assertEquals(u.book.estimate("h1", "h2", 100_100)!.rttMs, 0.8);
  assertEquals(u.observePathRtts("h1", [["h2", 1.6]], 100_000 + MIN_PATH_RTT_GAP_MS), 1);
  assertEquals(u.book.estimate("h1", "h2", 100_500)!.rttMs, 0.8 + (1.6 - 0.8) / 8, "EWMA");

  const view = u.view(["h1", "h2"], 100_500);
  assertEquals(view.pathRttRefused["too often"], 2);
  assertEquals(view.pairs.find((p) => p.pair === "h1|h2")?.kind, "host pair");
});

Deno.test("underlay service: a pair's fast-path RTT is preferred over its star links' sum while up and fresh", () => {
  const f = fake();
  const u = new UnderlayService(f.sources, { maxAgeMs: 60_000 });
  const rttOf = (now: number) => {
    const p = u.plannedPaths(["h1", "h2"], now)[0];
    return `${p.rttMs} ${p.rttVia}`;
  };
  u.sample(100_000);
  assertEquals(rttOf(100_000), "5 star", "h1's 2 ms and h2's 3 ms star links");
  f.direct.add("h1|h2");
  u.observePathRtts("h2", [["h1", 0.7]], 100_000);
  assertEquals(rttOf(100_000), "0.7 fast-path");
  // The planner is given it too, with the star path's bandwidth.
  f.links.get("h1")!.txBytes = 1e6;
  f.links.get("h2")!.txBytes = 1e6;
  u.sample(101_000);
  assertEquals(u.pathCosts(["h1", "h2"], 101_000)("h1|h2")?.rttMs, 0.7);
  // No report for longer than maxAgeMs: the star again, until the next report.
  assertEquals(rttOf(161_000), "5 star");
  u.observePathRtts("h1", [["h2", 0.7]], 161_000);
  assertEquals(rttOf(161_000), "0.7 fast-path");
  // The fast path went down: its traffic takes the star, and so does its price.
  f.direct.delete("h1|h2");
  assertEquals(rttOf(161_000), "5 star");
  f.links.get("h1")!.rttMs = null;
  u.sample(162_000);
  assertEquals(rttOf(162_000), "5 star", "the book keeps h1's last star RTT");
  const lone = new UnderlayService(fake().sources);
  assertEquals(`${lone.plannedPaths(["h1", "h2"], 0)[0].rttVia}`, "unknown", "nothing yet");
});

Deno.test("underlay service: past FULL_VIEW_HOSTS the view prices only pairs that matter, and pathCosts prices lazily", () => {
  const f = fake();
  const u = new UnderlayService(f.sources, { settleMs: 10_000 });
  u.sample(100_000);
  for (const l of f.links.values()) l.txBytes = l.rxBytes = 5e6;
  f.setMatrix([{ src: A, dst: B, bytesPerSec: 3e6 }]);
  u.sample(101_000);
  const many = ["h1", "h2", "h3", ...Array.from({ length: FULL_VIEW_HOSTS }, (_, i) => `x${i}`)];
  const view = u.view(many, 101_000);
  assert(view.partial);
  assertEquals(view.planned.map((p) => p.pair), ["h1|h2"], "the pair that carries VM traffic");
  assertEquals(view.unmeasured, []);
  const small = u.view(["h1", "h2", "h3"], 101_000);
  assert(!small.partial);
  assertEquals(small.planned.length, 3, "every pair");
  // The planner's pricing agrees with the view, for any pair it asks, and only knows the hosts
  // it was given.
  const cost = u.pathCosts(many, 101_000);
  const full = new Map(small.planned.map((p) => [p.pair, p]));
  for (const pair of ["h1|h2", "h1|h3", "h2|h3"]) {
    assertEquals(cost(pair)?.bandwidthBytesPerSec ?? null, full.get(pair)!.bandwidthBytesPerSec);
  }
  assertEquals(u.pathCosts(["h1"], 101_000)("h1|h2"), null, "h2 is not among the hosts");
});
