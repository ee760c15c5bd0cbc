/**
 * The proxy's underlay service against fake sources: star links whose counters grow, a VM
 * matrix, VMs on hosts; what it samples, what the planner is told, and the bottleneck named.
 */
import { assert, assertEquals } from "../support/assert.ts";
import { STAR, UnderlayService, type UnderlaySources } from "../../proxy/underlay_service.ts";

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
    vms: () => vms,
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
