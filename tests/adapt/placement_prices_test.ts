import assert from "node:assert/strict";
import { DENSE_MAX_HOSTS, PairPrices } from "../../adapt/placement_prices.ts";
import { placementCost, planPlacement } from "../../adapt/placement.ts";
import type { PathEstimate } from "../../adapt/placement.ts";

const hosts = (n: number) => Array.from({ length: n }, (_, i) => `h${String(i).padStart(5, "0")}`);

function source(calls: string[]) {
  return {
    lookup: (pair: string): PathEstimate | null => {
      calls.push(pair);
      return { bandwidthBytesPerSec: 1e6, rttMs: 10 };
    },
    unknownPath: null,
    latencyWeight: 1,
    check: () => {},
  };
}

Deno.test("prices: a small overlay is priced up front, a large one only where asked, once", () => {
  const small: string[] = [];
  const dense = new PairPrices(hosts(4), source(small));
  assert.equal(small.length, 6, "every pair of 4 hosts at once");
  assert.equal(dense.cost(1e6, 0, 1), 1 + 0.01);
  assert.equal(small.length, 6);

  const asked: string[] = [];
  const lazy = new PairPrices(hosts(DENSE_MAX_HOSTS + 1), source(asked));
  assert.equal(asked.length, 0, "nothing priced before it is asked");
  assert.equal(lazy.cost(1e6, 7, 200), 1 + 0.01);
  assert.equal(lazy.cost(2e6, 200, 7), 2 + 0.01, "the same pair both ways");
  assert.ok(lazy.isPriced(200, 7));
  assert.equal(lazy.cost(1e6, 5, 5), 0, "one host");
  assert.deepEqual(asked, ["h00007|h00200"]);
});

Deno.test("prices: plans and costs are the same with a thousand idle hosts more", () => {
  const underlay = new Map<string, PathEstimate>([
    ["h00000|h00001", { bandwidthBytesPerSec: 1e6, rttMs: 50 }],
    ["h00000|h00002", { bandwidthBytesPerSec: 100e6, rttMs: 1 }],
    ["h00001|h00002", { bandwidthBytesPerSec: 100e6, rttMs: 1 }],
  ]);
  const edges = [{ a: "m1", b: "m2", bytesPerSec: 5e5 }, { a: "m2", b: "m3", bytesPerSec: 1e5 }];
  const vmHost = new Map([["m1", "h00000"], ["m2", "h00001"], ["m3", "h00002"]]);
  const plan = (n: number) =>
    planPlacement({
      edges,
      vmHost,
      slots: new Map(hosts(n).map((h, i) => [h, i < 3 ? 2 : 0])),
      underlay,
      settings: { maxMoves: 4, minGain: 0.05, moveCost: 0.01, latencyWeight: 1 },
    });
  const few = plan(3);
  const many = plan(DENSE_MAX_HOSTS + 50);
  assert.ok(few.moves.length > 0, few.reason);
  assert.deepEqual(many, few);
  const cost = placementCost(edges, vmHost, { underlay, latencyWeight: 1 });
  assert.equal(cost, few.predictedCost.before);
});
