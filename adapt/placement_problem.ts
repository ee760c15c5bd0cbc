/**
 * A placement problem as arrays (VMs and hosts are indices in name order), what a placement
 * costs, and the migrations that reach it:
 *
 *     Problem + final placement -> pending moves (VMs not where they end)
 *       -> run any move whose host has a free slot (byGain: the one that lowers the cost most)
 *       -> none can run (a cycle of full hosts)? a VM another move waits for makes a stopover
 *          on a host with a free slot (one extra migration); no free slot anywhere: impossible
 *       -> describeSteps: names and a one-line reason per migration
 *
 * Shared by the planner (adapt/placement.ts), the search (adapt/placement_search.ts) and its
 * neighbourhoods (adapt/placement_moves.ts), with the types the last two share.
 *
 * @module
 */

import { formatRate } from "../agent/rate.ts";
import type { PairPrices } from "./placement_prices.ts";

/** A placement problem as arrays, built and validated by adapt/placement.ts. */
export interface Problem {
  /** VM names, sorted; index = VM. */
  vms: readonly string[];
  /** Host names, sorted; index = host. */
  hosts: readonly string[];
  /** The host each VM is on now. */
  home: Int32Array;
  /** VMs each host can hold; 0 for hosts that only appear as a VM's current host. */
  slots: Int32Array;
  /** 1: never moves. */
  pinned: Uint8Array;
  /** Neighbours of each VM (ascending) and the traffic to each, bytes/s. */
  adjacency: { peers: Int32Array; bytesPerSec: Float64Array }[];
  /** What an edge costs across each host pair, and which pairs have a price. */
  prices: PairPrices;
}

/** Bounds of the search. */
export interface SearchOptions {
  maxMoves: number;
  moveCost: number;
  /** Local-search rounds at most (each takes at least one improving change). */
  maxRounds: number;
  /** Gains at or below this are noise. */
  epsilon: number;
  /** How changes are ranked (see `byRank` in adapt/placement_moves.ts). */
  rank: "net" | "rate";
}

/**
 * What the neighbourhoods (adapt/placement_moves.ts) read of the search
 * (adapt/placement_search.ts) to price changes; they never write it.
 */
export interface SearchState {
  readonly p: Problem;
  readonly options: SearchOptions;
  /** The final placement. */
  readonly at: Int32Array;
  readonly occupancy: Int32Array;
  /** [v * hosts + h]: cost of v's edges were v on h. */
  readonly rowCost: Float64Array;
  /** [v * hosts + h]: v's edges that would newly cross an unpriced pair were v on h. */
  readonly rowBad: Int32Array;
  /** VMs on each host. */
  readonly members: readonly ReadonlySet<number>[];
  /** VMs not at home. */
  readonly displaced: number;
}

/** One migration of a schedule. */
export interface Step {
  vm: number;
  from: number;
  to: number;
  /** Decrease of the cost by this step alone (negative for a stopover or a swap's first half). */
  gain: number;
}

/**
 * Cost of one VM edge of `bytesPerSec` between hosts h and g; unpriced pairs add nothing.
 *
 * @example
 * ```ts
 * import { compilePlacement } from "./placement.ts";
 * import { edgeBad, edgeCost } from "./placement_problem.ts";
 * const p = compilePlacement({
 *   edges: [],
 *   vmHost: new Map(),
 *   slots: new Map([["h0", 1], ["h1", 1], ["h2", 1]]),
 *   underlay: new Map([["h0|h1", { bandwidthBytesPerSec: 1e6, rttMs: 10 }]]),
 *   settings: { maxMoves: 0, minGain: 0, moveCost: 0, latencyWeight: 1 },
 * });
 * if (edgeCost(p, 5e5, 0, 1) !== 0.51 || edgeCost(p, 5e5, 1, 1) !== 0) throw new Error();
 * if (edgeCost(p, 5e5, 0, 2) !== 0 || edgeBad(p, 0, 2, false) !== 1) throw new Error("unknown");
 * if (edgeBad(p, 0, 2, true) !== 0) throw new Error("where it crossed at home: allowed");
 * ```
 */
export function edgeCost(p: Problem, bytesPerSec: number, h: number, g: number): number {
  return p.prices.cost(bytesPerSec, h, g);
}

/**
 * 1 when an edge between hosts h and g crosses an unpriced pair and its VMs are not both at
 * home (`bothHome`): the plan would put it there. See {@linkcode edgeCost} for an example.
 */
export function edgeBad(p: Problem, h: number, g: number, bothHome: boolean): number {
  return h !== g && !bothHome && !p.prices.isPriced(h, g) ? 1 : 0;
}

/**
 * The cost of a whole placement, edge by edge.
 *
 * @example
 * ```ts
 * import { compilePlacement } from "./placement.ts";
 * import { costOf } from "./placement_problem.ts";
 * const p = compilePlacement({
 *   edges: [{ a: "m1", b: "m2", bytesPerSec: 1e6 }],
 *   vmHost: new Map([["m1", "h1"], ["m2", "h2"]]),
 *   slots: new Map([["h1", 2], ["h2", 2]]),
 *   underlay: new Map([["h1|h2", { bandwidthBytesPerSec: 4e6, rttMs: 1 }]]),
 *   settings: { maxMoves: 1, minGain: 0, moveCost: 0 },
 * });
 * if (costOf(p, p.home) !== 0.25 || costOf(p, Int32Array.from([0, 0])) !== 0) throw new Error();
 * ```
 */
export function costOf(p: Problem, at: Int32Array): number {
  let sum = 0;
  for (let v = 0; v < p.vms.length; v++) {
    const { peers, bytesPerSec } = p.adjacency[v];
    for (let i = 0; i < peers.length; i++) {
      if (peers[i] > v) sum += edgeCost(p, bytesPerSec[i], at[v], at[peers[i]]);
    }
  }
  return sum;
}

/**
 * Migrations that take every VM from `p.home` to `at`, each into a host with a free slot at
 * that moment; null when none exist (every host full). A move that can run runs (byGain: the
 * one that lowers the cost most, else the first by VM name); when none can (a cycle of full
 * hosts), a VM leaving a host that another move waits for makes a stopover on a host with a
 * free slot, one extra migration.
 *
 * @example
 * ```ts
 * import { compilePlacement } from "./placement.ts";
 * import { schedule } from "./placement_problem.ts";
 * const p = compilePlacement({
 *   edges: [],
 *   vmHost: new Map([["m1", "h1"], ["m2", "h2"]]),
 *   slots: new Map([["h1", 1], ["h2", 1], ["h3", 1]]),
 *   underlay: new Map(),
 *   settings: { maxMoves: 3, minGain: 0, moveCost: 0 },
 * });
 * // m1 and m2 trade places; both hosts are full, so m1 stops over on h3.
 * const steps = schedule(p, Int32Array.from([1, 0]), { byGain: false })!;
 * const shown = steps.map((s) => `${p.vms[s.vm]}:${p.hosts[s.to]}`).join();
 * if (shown !== "m1:h3,m2:h1,m1:h2") throw new Error(shown);
 * ```
 */
export function schedule(p: Problem, at: Int32Array, options: { byGain: boolean }): Step[] | null {
  const H = p.hosts.length;
  const cur = Int32Array.from(p.home);
  const occupancy = new Int32Array(H);
  for (const h of cur) occupancy[h]++;
  const waitedFor = new Int32Array(H);
  const pending: number[] = [];
  for (let v = 0; v < at.length; v++) {
    if (at[v] !== cur[v]) {
      pending.push(v);
      waitedFor[at[v]]++;
    }
  }
  const steps: Step[] = [];
  const step = (v: number, to: number) => {
    steps.push({ vm: v, from: cur[v], to, gain: stepGain(p, cur, v, to) });
    occupancy[cur[v]]--;
    occupancy[to]++;
    cur[v] = to;
  };
  const gainOf = (v: number, to: number) => options.byGain ? stepGain(p, cur, v, to) : 0;
  while (pending.length > 0) {
    let best = -1;
    let bestGain = -Infinity;
    for (const v of pending) {
      if (occupancy[at[v]] >= p.slots[at[v]]) continue;
      const g = gainOf(v, at[v]);
      if (g > bestGain) [best, bestGain] = [v, g];
      if (!options.byGain) break;
    }
    if (best >= 0) {
      step(best, at[best]);
      pending.splice(pending.indexOf(best), 1);
      waitedFor[at[best]]--;
      continue;
    }
    let stop: [number, number] | null = null;
    for (const v of pending) {
      if (waitedFor[cur[v]] === 0) continue;
      for (let r = 0; r < H; r++) {
        if (r === cur[v] || occupancy[r] >= p.slots[r]) continue;
        const g = gainOf(v, r);
        if (stop === null || g > bestGain) [stop, bestGain] = [[v, r], g];
        if (!options.byGain) break;
      }
      if (stop !== null && !options.byGain) break;
    }
    if (stop === null) return null;
    step(stop[0], stop[1]);
  }
  return steps;
}

/** The decrease of the cost if VM v alone goes to `to`, the others where `cur` has them. */
function stepGain(p: Problem, cur: Int32Array, v: number, to: number): number {
  const { peers, bytesPerSec } = p.adjacency[v];
  let gain = 0;
  for (let i = 0; i < peers.length; i++) {
    const h = cur[peers[i]];
    gain += edgeCost(p, bytesPerSec[i], cur[v], h) - edgeCost(p, bytesPerSec[i], to, h);
  }
  return gain;
}

/**
 * The steps with names and a one-line reason each; `at` is the final placement, `before` the
 * cost before the first step (gains are shown as a share of it).
 *
 * @example
 * ```ts
 * import { compilePlacement } from "./placement.ts";
 * import { describeSteps, schedule } from "./placement_problem.ts";
 * const p = compilePlacement({
 *   edges: [{ a: "m1", b: "m2", bytesPerSec: 1e6 }],
 *   vmHost: new Map([["m1", "h1"], ["m2", "h2"]]),
 *   slots: new Map([["h1", 1], ["h2", 2]]),
 *   underlay: new Map([["h1|h2", { bandwidthBytesPerSec: 2e6, rttMs: 1 }]]),
 *   settings: { maxMoves: 1, minGain: 0, moveCost: 0 },
 * });
 * const at = Int32Array.from([1, 1]);
 * const [m] = describeSteps(p, schedule(p, at, { byGain: true })!, { at, before: 0.5 });
 * const want = "1.00 MB/s of its traffic becomes same-host, 0 B/s crosses hosts (cost -100%)";
 * if (m.reason !== want) throw new Error(m.reason);
 * ```
 */
export function describeSteps(
  p: Problem,
  steps: Step[],
  options: { at: Int32Array; before: number },
): { vm: string; from: string; to: string; gain: number; reason: string }[] {
  const { at, before } = options;
  const cur = Int32Array.from(p.home);
  return steps.map((st) => {
    cur[st.vm] = st.to;
    const { peers, bytesPerSec } = p.adjacency[st.vm];
    let local = 0;
    let crossing = 0;
    for (let i = 0; i < peers.length; i++) {
      if (cur[peers[i]] === st.to) local += bytesPerSec[i];
      else crossing += bytesPerSec[i];
    }
    const change = `cost ${st.gain >= 0 ? "-" : "+"}${
      Number((100 * Math.abs(st.gain) / before).toFixed(1))
    }%`;
    // A step that does not end where its VM ends is a stopover.
    const reason = st.to !== at[st.vm]
      ? `stopover on ${p.hosts[st.to]} to free a slot on ${p.hosts[st.from]}; goes on to ` +
        `${p.hosts[at[st.vm]]} (${change})`
      : `${formatRate(local)} of its traffic becomes same-host, ${formatRate(crossing)} ` +
        `crosses hosts (${change})`;
    return { vm: p.vms[st.vm], from: p.hosts[st.from], to: p.hosts[st.to], gain: st.gain, reason };
  });
}
