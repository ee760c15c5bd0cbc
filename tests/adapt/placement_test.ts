import { assert, assertEquals, assertThrows } from "../support/assert.ts";
import {
  type PathEstimate,
  placementCost,
  type PlacementInput,
  type PlacementPlan,
  type PlacementSettings,
  planPlacement,
  type VmEdge,
} from "../../adapt/placement.ts";
import { exhaustivePlacement } from "../../adapt/placement_exhaustive.ts";
import { hostPair } from "../../adapt/planner.ts";
import { clusteredInstance, smallInstance } from "../support/placement_instances.ts";
import { prng } from "../support/topologies.ts";

const LAN: PathEstimate = { bandwidthBytesPerSec: 125e6, rttMs: 0.2 };
const MAN: PathEstimate = { bandwidthBytesPerSec: 12.5e6, rttMs: 5 };

/** Every pair of `hosts` priced as `path`, except the pairs in `except`. */
function uniform(hosts: string[], path: PathEstimate, except: Record<string, PathEstimate> = {}) {
  const m = new Map<string, PathEstimate>();
  for (const a of hosts) {
    for (const b of hosts) if (a < b) m.set(hostPair(a, b), except[hostPair(a, b)] ?? path);
  }
  return m;
}

function input(
  edges: [string, string, number][],
  vmHost: Record<string, string>,
  slots: Record<string, number>,
  options: Partial<Omit<PlacementInput, "settings">> & { settings?: Partial<PlacementSettings> } =
    {},
): PlacementInput {
  const hosts = Object.keys(slots);
  return {
    edges: edges.map(([a, b, bytesPerSec]) => ({ a, b, bytesPerSec })),
    vmHost: new Map(Object.entries(vmHost)),
    slots: new Map(Object.entries(slots)),
    pinned: options.pinned,
    underlay: options.underlay ?? uniform(hosts, MAN),
    settings: { maxMoves: 8, minGain: 0, moveCost: 0, ...options.settings },
  };
}

/**
 * Replays the plan from the input's placement and checks what every plan must satisfy: each
 * move starts where its VM is, never moves a pinned VM, fits a free slot when it runs, no more
 * than maxMoves; the predicted costs and gains add up; no edge newly crosses an unknown pair.
 */
function replay(inp: PlacementInput, plan: PlacementPlan): Map<string, string> {
  const at = new Map(inp.vmHost);
  const count = (h: string) => [...at.values()].filter((x) => x === h).length;
  assert(plan.moves.length <= inp.settings.maxMoves, "at most maxMoves");
  for (const m of plan.moves) {
    assertEquals(at.get(m.vm), m.from, `${m.vm} starts where it is`);
    assert(!inp.pinned?.has(m.vm), `${m.vm} is pinned`);
    assert(m.from !== m.to, "a move goes somewhere");
    assert(count(m.to) < (inp.slots.get(m.to) ?? 0), `${m.to} has a free slot for ${m.vm}`);
    at.set(m.vm, m.to);
  }
  const { latencyWeight, unknownPath } = inp.settings;
  const opts = { underlay: inp.underlay, latencyWeight, unknownPath };
  const before = placementCost(inp.edges, inp.vmHost, opts);
  const after = placementCost(inp.edges, at, opts);
  const close = (x: number, y: number) => Math.abs(x - y) <= 1e-9 * (1 + Math.abs(y));
  assert(close(plan.predictedCost.before, before), "before as predicted");
  assert(close(plan.predictedCost.after, after), "after as predicted");
  const gains = plan.moves.reduce((s, m) => s + m.gain, 0);
  assert(close(gains, before - after), "step gains add up");
  assert(
    close(plan.netGain, before - after - inp.settings.moveCost * plan.moves.length),
    "net gain",
  );
  if (plan.moves.length > 0) {
    assert(plan.netGain >= inp.settings.minGain * before, "minGain");
  }
  assert(admissible(inp, at), "no edge newly across an unknown pair");
  return at;
}

function admissible(inp: PlacementInput, at: ReadonlyMap<string, string>): boolean {
  const known = (a: string, b: string) => {
    const u = inp.underlay;
    const pair = hostPair(a, b);
    return (typeof u === "function" ? u(pair) : u.get(pair)) != null;
  };
  return inp.edges.every((e) => {
    const [ha, hb] = [at.get(e.a), at.get(e.b)];
    if (ha === undefined || hb === undefined || ha === hb || e.bytesPerSec === 0) return true;
    if (known(ha, hb) || inp.settings.unknownPath) return true;
    return ha === inp.vmHost.get(e.a) && hb === inp.vmHost.get(e.b);
  });
}

Deno.test("a VM joins its heavy partner on a host with a free slot", () => {
  const inp = input([["a", "b", 10e6], ["a", "c", 1e5]], { a: "h1", b: "h2", c: "h1" }, {
    h1: 2,
    h2: 2,
  });
  const p = planPlacement(inp);
  replay(inp, p);
  assertEquals(p.moves.map((m) => [m.vm, m.from, m.to]), [["a", "h1", "h2"]]);
  assert(
    p.moves[0].reason.startsWith("10.0 MB/s of its traffic becomes same-host"),
    p.moves[0].reason,
  );
  assert(p.reason.startsWith("1 move cut the cost by 99"), p.reason);
});

Deno.test("full hosts: a swap runs as two moves, the first into the free slot", () => {
  // a-b and c-d talk; a, c on h1 (full), b, d on h2 (one free slot).
  const inp = input([["a", "b", 10e6], ["c", "d", 10e6]], { a: "h1", c: "h1", b: "h2", d: "h2" }, {
    h1: 2,
    h2: 3,
  });
  const p = planPlacement(inp);
  replay(inp, p);
  assertEquals(p.predictedCost.after, 0);
  assertEquals(p.moves.length, 2);
  assertEquals(p.moves[0].to, "h2", "into the free slot first");
});

Deno.test("every host of the pair full: the swap makes a stopover on a third host", () => {
  const inp = input([["a", "b", 10e6], ["c", "d", 10e6]], { a: "h1", c: "h1", b: "h2", d: "h2" }, {
    h1: 2,
    h2: 2,
    h3: 1,
  }, { underlay: uniform(["h1", "h2", "h3"], MAN) });
  const p = planPlacement(inp);
  replay(inp, p);
  assertEquals(p.moves.length, 3);
  assertEquals(p.moves[0].to, "h3");
  assert(p.moves[0].reason.startsWith("stopover on h3 to free a slot on h"), p.moves[0].reason);
  assertEquals(p.predictedCost.after, 0);
  // With no slot anywhere, nothing can move.
  const stuck = input(
    [["a", "b", 10e6], ["c", "d", 10e6]],
    { a: "h1", c: "h1", b: "h2", d: "h2" },
    {
      h1: 2,
      h2: 2,
    },
  );
  const q = planPlacement(stuck);
  assertEquals(q.moves, []);
  assert(q.reason.includes("0 free slots"), q.reason);
});

Deno.test("pinned VMs never move: the partner moves, or nothing", () => {
  const edges: [string, string, number][] = [["a", "b", 10e6]];
  const where = { a: "h1", b: "h2" };
  const slots = { h1: 2, h2: 2 };
  const p = planPlacement(input(edges, where, slots, { pinned: new Set(["a"]) }));
  assertEquals(p.moves.map((m) => [m.vm, m.to]), [["b", "h1"]]);
  const q = planPlacement(input(edges, where, slots, { pinned: new Set(["a", "b"]) }));
  assertEquals(q.moves, []);
  assert(q.reason.startsWith("no move or swap gains more than it costs (2 of 2 VMs pinned"));
});

Deno.test("maxMoves bounds the plan, and the bounded plan takes the heaviest moves", () => {
  // Four pairs split across a slow path, rates 4, 3, 2, 1 MB/s; h1 and h2 have room.
  const edges: [string, string, number][] = [["a1", "a2", 4e6], ["b1", "b2", 3e6], [
    "c1",
    "c2",
    2e6,
  ], ["d1", "d2", 1e6]];
  const where = { a1: "h1", b1: "h1", c1: "h1", d1: "h1", a2: "h2", b2: "h2", c2: "h2", d2: "h2" };
  const slots = { h1: 8, h2: 8 };
  for (const maxMoves of [0, 1, 2, 4, 6]) {
    const inp = input(edges, where, slots, { settings: { maxMoves } });
    const p = planPlacement(inp);
    replay(inp, p);
    assertEquals(p.moves.length, Math.min(maxMoves, 4), `maxMoves ${maxMoves}`);
    assertEquals(p.moves.map((m) => m.vm[0]), ["a", "b", "c", "d"].slice(0, maxMoves));
  }
  assertEquals(
    planPlacement(input(edges, where, slots, { settings: { maxMoves: 0 } })).reason,
    "maxMoves is 0: migration is off",
  );
});

Deno.test("minGain and moveCost: small gains are not worth a migration", () => {
  // Moving b next to a saves 0.08 of a cost of 0.88 (9.1%).
  const edges: [string, string, number][] = [["a", "b", 1e6], ["c", "d", 10e6]];
  const where = { a: "h1", b: "h2", c: "h1", d: "h2" };
  const slots = { h1: 3, h2: 2 };
  const pinned = new Set(["c", "d"]);
  const yes = input(edges, where, slots, { pinned, settings: { minGain: 0.09 } });
  assertEquals(planPlacement(yes).moves.length, 1);
  const no = planPlacement(input(edges, where, slots, { pinned, settings: { minGain: 0.1 } }));
  assertEquals(no.moves, []);
  assertEquals(no.reason, "no plan gains at least 10% (best: 1 move, 9.1%)");
  const dear = planPlacement(input(edges, where, slots, { pinned, settings: { moveCost: 0.08 } }));
  assertEquals(dear.moves, [], "a move that gains exactly its cost is not taken");
});

Deno.test("unknown paths: no edge is moved onto a pair with no estimate unless configured", () => {
  // a (h1) talks to b (h2) over the slow h1|h2; h3 is fast to h2 but unknown to h1... and c on
  // h1 talks to a, so a on h3 would put a-c on the unknown h1|h3.
  const edges: [string, string, number][] = [["a", "b", 10e6], ["a", "c", 1e6]];
  const where = { a: "h1", c: "h1", b: "h2" };
  const slots = { h1: 2, h2: 1, h3: 1 };
  const underlay = new Map([["h1|h2", MAN], ["h2|h3", LAN]]);
  const p = planPlacement(input(edges, where, slots, { underlay, pinned: new Set(["b", "c"]) }));
  assertEquals(p.moves, []);
  const assumed = input(edges, where, slots, {
    underlay,
    pinned: new Set(["b", "c"]),
    settings: { unknownPath: MAN },
  });
  const q = planPlacement(assumed);
  replay(assumed, q);
  assertEquals(q.moves.map((m) => [m.vm, m.to]), [["a", "h3"]]);
});

Deno.test("latencyWeight prices a round trip per edge across hosts", () => {
  // Every path has the same bandwidth; h2|h3 has 100 ms more RTT than the others.
  const edges: [string, string, number][] = [["a", "b", 1e6], ["a", "c", 1e3]];
  const underlay = uniform(["h1", "h2", "h3"], MAN, {
    "h2|h3": { bandwidthBytesPerSec: 12.5e6, rttMs: 105 },
  });
  const base = { underlay, pinned: new Set(["b", "c"]) };
  const where = { a: "h1", b: "h2", c: "h3" };
  const slots = { h1: 1, h2: 1, h3: 2 };
  // Bandwidth only: a on h3 (with c) costs 1e6/12.5e6 = 0.08 < 0.08008 now: a small gain.
  // With latency, a-b would cross h2|h3: 0.185 against 0.09008 now.
  assertEquals(planPlacement(input(edges, where, slots, base)).moves.map((m) => m.to), ["h3"]);
  const slow = planPlacement(
    input(edges, where, slots, { ...base, settings: { latencyWeight: 1 } }),
  );
  assertEquals(slow.moves, [], "0.1 s of extra round trip outweighs it");
});

Deno.test("VMs with unknown hosts are ignored; hosts without slots take no VM", () => {
  const underlay = uniform(["h1", "h2"], MAN);
  const inp = input([["a", "b", 10e6], ["a", "ghost", 50e6]], { a: "h1", b: "h2" }, { h1: 1 }, {
    underlay,
  });
  const p = planPlacement(inp);
  replay(inp, p);
  assertEquals(p.moves, [], "h1 is full, h2 has no slots");
  assertEquals(p.predictedCost.before, 0.8, "the ghost's traffic is not priced");
  const q = planPlacement(input([["a", "b", 10e6]], { a: "h1", b: "h2" }, { h1: 2 }, { underlay }));
  assertEquals(q.moves.map((m) => [m.vm, m.to]), [["b", "h1"]], "h2 has no slots: b may leave");
});

Deno.test("the same input in any order gives the same plan", () => {
  const random = prng(7);
  for (let i = 0; i < 40; i++) {
    const inp = smallInstance(random);
    const shuffled: PlacementInput = {
      ...inp,
      edges: [...inp.edges].reverse().map((e: VmEdge) => ({
        a: e.b,
        b: e.a,
        bytesPerSec: e.bytesPerSec,
      })),
      vmHost: new Map([...inp.vmHost].reverse()),
      slots: new Map([...inp.slots].reverse()),
    };
    assertEquals(planPlacement(shuffled), planPlacement(inp), `instance ${i}`);
  }
  const big = clusteredInstance(128, prng(3));
  const bigShuffled = {
    ...big,
    edges: [...big.edges].reverse(),
    vmHost: new Map([...big.vmHost].reverse()),
  };
  assertEquals(planPlacement(bigShuffled), planPlacement(big), "128 VMs");
});

Deno.test("128 VMs: plans are valid; greedy alone (maxRounds 0) is never better", () => {
  for (const seed of [1, 2]) {
    const inp = clusteredInstance(128, prng(seed));
    const full = planPlacement(inp);
    const greedy = planPlacement({ ...inp, settings: { ...inp.settings, maxRounds: 0 } });
    replay(inp, full);
    replay(inp, greedy);
    assert(full.moves.length > 0 && full.moves.length <= 32);
    const objective = (p: PlacementPlan) =>
      p.predictedCost.after + inp.settings.moveCost * p.moves.length;
    assert(objective(full) <= objective(greedy) + 1e-9, `seed ${seed}`);
  }
});

Deno.test("bad input is refused with the key named", () => {
  const ok = input([["a", "b", 1e6]], { a: "h1", b: "h2" }, { h1: 1, h2: 1 });
  const bad = (patch: Partial<PlacementInput>, includes: string) =>
    assertThrows(() => planPlacement({ ...ok, ...patch }), RangeError, includes);
  bad({ settings: { ...ok.settings, maxMoves: -1 } }, "settings.maxMoves must be an integer >= 0");
  bad({ settings: { ...ok.settings, minGain: 10 } }, "settings.minGain must be a fraction");
  bad({ settings: { ...ok.settings, moveCost: NaN } }, "settings.moveCost");
  bad({ slots: new Map([["h1", 1.5]]) }, "slots of h1 must be an integer >= 0, got 1.5");
  bad({ edges: [{ a: "a", b: "b", bytesPerSec: -1 }] }, "edges[0] (a-b) has bytesPerSec -1");
  bad(
    { underlay: new Map([["h1|h2", { bandwidthBytesPerSec: 0, rttMs: 1 }]]) },
    "the underlay estimate of h1|h2 has bandwidthBytesPerSec 0",
  );
});

/**
 * The gap is the cost the planner leaves on the table, as a share of the cost before:
 * (planner's cost + moves x moveCost - the optimum's) / cost before. Measured over 10,000
 * instances (seeds 1-10): mean 0.15% when every pair has an estimate, 0.45% when some do not;
 * 99% of instances within 2.1% (resp. 16%). The rare large gaps (up to 100% of a tiny cost)
 * are instances whose only gain needs three or four VMs moved at once where every smaller
 * change loses or crosses an unknown pair: a local optimum of the neighbourhoods. This seed's 500
 * give a mean of 0.06% and a worst of 24%; without neighbour and group moves, 0.9% and 100%.
 * The bounds leave room for benign changes and catch that.
 */
Deno.test("against exhaustive search on 500 seeded instances (up to 8 VMs, 4 hosts)", () => {
  const random = prng(2024);
  const gaps: number[] = [];
  let optimal = 0;
  for (let i = 0; i < 500; i++) {
    const inp = smallInstance(random);
    const plan = planPlacement(inp);
    replay(inp, plan);
    const best = exhaustivePlacement(inp);
    const before = plan.predictedCost.before;
    const ours = plan.predictedCost.after + inp.settings.moveCost * plan.moves.length;
    assert(ours >= best.objective - 1e-9 * (1 + before), `instance ${i}: below the optimum`);
    const gap = before > 0 ? Math.max(0, (ours - best.objective) / before) : 0;
    gaps.push(gap);
    if (gap <= 1e-9) optimal++;
  }
  const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
  const worst = Math.max(...gaps);
  const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
  console.log(
    `placement vs exhaustive, 500 instances: optimal in ${optimal}; gap (share of the cost ` +
      `before) mean ${pct(mean)}, worst ${pct(worst)}`,
  );
  assert(optimal >= 475, "optimal in at least 95% of instances");
  assert(mean < 0.005, "mean gap under 0.5%");
  assert(worst < 0.35, "worst gap under 35%");
});
