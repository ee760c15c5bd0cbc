/**
 * Cost of the placement planner on large overlays, and its distance from the optimum on small
 * ones. Large: n VMs in applications of 8 (each VM talks to 4 of its application at 1-10 MB/s
 * and to one random VM at about 50 kB/s), scattered at random on n/8 hosts of 10 slots in racks
 * of 8 (125 MB/s inside a rack, 12.5 MB/s across), at most n/4 moves. Each planner time is
 * printed beside two baselines from the same run: one evaluation of the whole placement's cost
 * from the input (validation and pricing included: the floor for anything that looks at the
 * placement) and the greedy passes alone (both rankings, no local search: maxRounds 0). Small:
 * seeded random instances of up to 8 VMs on 4 hosts, planned and solved by exhaustive search;
 * the gap is the cost left on the table as a share of the cost before.
 * Target: a plan for 1024 VMs within 1 s on this machine.
 *
 *     usage: deno run bench/placement_bench.ts [--sizes 64,256,1024] [--small 200] [--seed 42]
 *
 * @module
 */

import { placementCost, planPlacement } from "../adapt/placement.ts";
import { exhaustivePlacement } from "../adapt/placement_exhaustive.ts";
import { clusteredInstance, smallInstance } from "../tests/support/placement_instances.ts";
import { prng } from "../tests/support/topologies.ts";

const TARGET_MS = 1000;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Median time of `fn` (ms) over `reps` runs, and its last result. */
function time<T>(reps: number, fn: () => T): { ms: number; result: T } {
  const ms: number[] = [];
  let result!: T;
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    result = fn();
    ms.push(performance.now() - t0);
  }
  return { ms: median(ms), result };
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

function large(sizes: number[], seed: number): number {
  console.log(
    "| VMs | hosts | cost eval, ms | greedy only, ms | planner, ms | x cost eval | x greedy | " +
      "moves | cost cut (greedy / planner) |",
  );
  console.log("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
  let worst = 0;
  for (const n of sizes) {
    const inp = clusteredInstance(n, prng(seed + n));
    const reps = n >= 1024 ? 3 : 5;
    const evalTime = time(
      50,
      () => placementCost(inp.edges, inp.vmHost, { underlay: inp.underlay }),
    );
    const greedy = time(
      reps,
      () => planPlacement({ ...inp, settings: { ...inp.settings, maxRounds: 0 } }),
    );
    const full = time(reps, () => planPlacement(inp));
    worst = Math.max(worst, n === 1024 ? full.ms : 0);
    const cut = (p: typeof full.result) => 1 - p.predictedCost.after / p.predictedCost.before;
    console.log(
      `| ${n} | ${n / 8} | ${evalTime.ms.toFixed(3)} | ${greedy.ms.toFixed(1)} | ` +
        `${full.ms.toFixed(1)} | ${(full.ms / evalTime.ms).toFixed(0)} | ` +
        `${(full.ms / greedy.ms).toFixed(2)} | ${full.result.moves.length} of ${n / 4} | ` +
        `${pct(cut(greedy.result))} / ${pct(cut(full.result))} |`,
    );
  }
  return worst;
}

/** Plans `count` seeded small instances and prints the gap to the exhaustive optimum. */
export function small(count: number, seed: number): void {
  const random = prng(seed);
  const gaps: number[] = [];
  let optimal = 0;
  let plannerMs = 0;
  let exhaustiveMs = 0;
  for (let i = 0; i < count; i++) {
    const inp = smallInstance(random);
    let t0 = performance.now();
    const plan = planPlacement({ ...inp, settings: { ...inp.settings, minGain: 0 } });
    plannerMs += performance.now() - t0;
    t0 = performance.now();
    const best = exhaustivePlacement(inp);
    exhaustiveMs += performance.now() - t0;
    const before = plan.predictedCost.before;
    const ours = plan.predictedCost.after + inp.settings.moveCost * plan.moves.length;
    const gap = before > 0 ? Math.max(0, (ours - best.objective) / before) : 0;
    gaps.push(gap);
    if (gap <= 1e-9) optimal++;
  }
  const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
  console.log(`\n| small instances (<= 8 VMs, <= 4 hosts) | value |`);
  console.log("|---|---:|");
  console.log(`| instances | ${count} |`);
  console.log(`| planner optimal | ${optimal} (${pct(optimal / count)}) |`);
  console.log(`| gap to the optimum, mean (share of the cost before) | ${pct(mean)} |`);
  console.log(`| gap to the optimum, worst | ${pct(Math.max(...gaps))} |`);
  console.log(
    `| instances more than 5% from the optimum | ${gaps.filter((g) => g > 0.05).length} |`,
  );
  console.log(
    `| time per instance: planner / exhaustive, ms | ${(plannerMs / count).toFixed(2)} / ${
      (exhaustiveMs / count).toFixed(2)
    } |`,
  );
}

if (import.meta.main) {
  const arg = (name: string, d: string) => {
    const i = Deno.args.indexOf(name);
    return i >= 0 ? Deno.args[i + 1] : d;
  };
  const sizes = arg("--sizes", "64,256,1024").split(",").map(Number);
  const seed = Number(arg("--seed", "42"));
  const worst = large(sizes, seed);
  small(Number(arg("--small", "200")), seed);
  if (sizes.includes(1024)) {
    console.log(
      `\ntarget: a plan for 1024 VMs within ${TARGET_MS} ms: ${
        worst <= TARGET_MS ? "met" : "NOT met"
      } (${worst.toFixed(0)} ms)`,
    );
  }
}
