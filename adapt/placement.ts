/**
 * Where VMs should live, as one pure function: from the VMs' traffic, where each VM is, what
 * each host can hold, which VMs are pinned and what the underlay's paths can carry, to a plan of
 * migrations (VM, from, to) in execution order, each with its predicted gain and reason.
 *
 *     VM edges --(vmHost)--> edges between placed VMs (unknown VMs ignored, duplicates summed)
 *       -> price every host pair from the underlay (same host: free; no estimate: unknown)
 *       -> greedy: the best change of VMs still at home (a move, a swap, a neighbour or group
 *          move: see adapt/placement_moves.ts), while one pays
 *       -> local search: the same changes of any VM, and exchanges, while one pays (bounded)
 *       -> twice: changes ranked by net gain, and by gain per move; the better plan wins
 *       -> schedule: migrations that each fit a free slot (a stopover breaks a full cycle)
 *       -> gains at least minGain of the cost? -> PlacementPlan, else no moves and why
 *
 * The cost of a placement is, over the VM edges whose ends are on different hosts,
 *
 *     sum  bytesPerSec / bandwidth(pair)  +  latencyWeight x rtt(pair) in seconds
 *
 * The first term is the share of each second the path spends carrying that traffic; summed
 * per pair it is the path's utilisation, summed over pairs the path-time the application
 * occupies per second. Same-host traffic costs nothing; 10 MB/s moved off a 12.5 MB/s MAN link
 * (0.8) onto a 125 MB/s LAN (0.08) gains 0.72. It prices what VTTIF measures (bytes), so it is
 * the term that matters for the bulk exchanges of the seed's BSP workloads. The second term is
 * for request/response applications: a round trip costs the same for 100 bytes or 1 MB, so it
 * is paid once per edge (VTTIF has already pruned edges too light to matter); it is off (0) by
 * default. Limits: pairs that share a bottleneck (the proxy's uplink on the star) are priced
 * independently, and an over-full path (utilisation > 1) is priced linearly, not as a wall.
 *
 * A move costs `moveCost` in the same unit; the search takes a change only if it lowers the
 * cost by more than the moves it adds cost, and the plan is proposed only if its net gain
 * (before - after - moveCost x moves) is at least `minGain` of the cost before.
 *
 * Host pairs without an underlay estimate are unknown: a plan never puts a VM edge across an
 * unknown pair unless that edge crossed the same pair before the plan (both VMs where they were);
 * such edges add nothing to the cost. With `unknownPath` set, unknown pairs are priced as that
 * path instead. The rule is about where traffic settles: while a plan runs, a VM may briefly
 * talk over an unknown pair.
 *
 * No clock, no I/O: the loop that executes a plan owns time and the hook.
 *
 * @module
 */

import type { HostPair } from "./planner.ts";
import { costOf, describeSteps, type Problem, schedule, type Step } from "./placement_problem.ts";
import { Search } from "./placement_search.ts";
import { PairPrices } from "./placement_prices.ts";

/** Traffic between two VMs (MACs), both directions; `TopologyEdge` from VTTIF fits. */
export interface VmEdge {
  a: string;
  b: string;
  bytesPerSec: number;
}

/** What a host pair's path carries. */
export interface PathEstimate {
  /** > 0. */
  bandwidthBytesPerSec: number;
  /** >= 0. */
  rttMs: number;
}

/** Per host pair, its path, or null (absent) when nothing is known. */
export type UnderlayCosts =
  | ReadonlyMap<HostPair, PathEstimate>
  | ((pair: HostPair) => PathEstimate | null);

/** The operator's placement settings. */
export interface PlacementSettings {
  /** At most this many migrations per plan, stopovers included. */
  maxMoves: number;
  /** Proposed only if the net gain is at least this fraction of the cost before (0.1 = 10%). */
  minGain: number;
  /** Cost of one migration, in the cost's unit (path-seconds per second). */
  moveCost: number;
  /** Cost of one second of round trip per VM edge across hosts. Default 0: bandwidth only. */
  latencyWeight?: number;
  /** The path assumed for pairs with no estimate. Default null: never create traffic on them. */
  unknownPath?: PathEstimate | null;
  /** Local-search rounds at most. Default 10,000. */
  maxRounds?: number;
}

/** What the placement planner decides over. */
export interface PlacementInput {
  /** VM traffic, e.g. the smoothed VTTIF graph's edges. */
  edges: readonly VmEdge[];
  /** VM MAC -> host now. VMs not here are ignored; every VM here takes a slot. */
  vmHost: ReadonlyMap<string, string>;
  /** Host -> VMs it can hold. A host missing here takes no VM (its VMs may leave). */
  slots: ReadonlyMap<string, number>;
  /** VMs that never move. */
  pinned?: ReadonlySet<string>;
  underlay: UnderlayCosts;
  settings: PlacementSettings;
}

/** One migration of a plan. */
export interface PlacementMove {
  vm: string;
  from: string;
  to: string;
  /** How much this step alone lowers the cost (negative for a stopover or a swap's first half). */
  gain: number;
  reason: string;
}

/** The planner's output. */
export interface PlacementPlan {
  /** In execution order; each fits a free slot when it runs. Empty when nothing is proposed. */
  moves: PlacementMove[];
  /** Cost of the placement now and after the moves (equal when there are none). */
  predictedCost: { before: number; after: number };
  /** before - after - moveCost x moves. */
  netGain: number;
  /** One line: what the plan does, or why there is no move. */
  reason: string;
}

const DEFAULT_MAX_ROUNDS = 10_000;

/**
 * Plans VM migrations. The same input always gives the same plan, whatever the order of its
 * edges, maps and sets.
 *
 * @throws {RangeError} when a setting, a slot count, an edge or an underlay estimate is out of
 *   range (the key is named)
 * @example
 * ```ts
 * import { planPlacement } from "./placement.ts";
 * // m1 and m2 exchange 10 MB/s across a 12.5 MB/s path; h2 has a free slot.
 * const p = planPlacement({
 *   edges: [{ a: "m1", b: "m2", bytesPerSec: 10e6 }],
 *   vmHost: new Map([["m1", "h1"], ["m2", "h2"]]),
 *   slots: new Map([["h1", 1], ["h2", 2]]),
 *   pinned: new Set(["m2"]),
 *   underlay: new Map([["h1|h2", { bandwidthBytesPerSec: 12.5e6, rttMs: 20 }]]),
 *   settings: { maxMoves: 4, minGain: 0.1, moveCost: 0.05 },
 * });
 * const [m] = p.moves;
 * if (p.moves.length !== 1 || m.vm !== "m1" || m.to !== "h2") throw new Error("m1 joins m2");
 * if (p.predictedCost.before !== 0.8 || p.predictedCost.after !== 0) throw new Error();
 * if (Math.abs(p.netGain - 0.75) > 1e-12) throw new Error("0.8 - one move at 0.05");
 * ```
 */
export function planPlacement(input: PlacementInput): PlacementPlan {
  const s = validateSettings(input.settings);
  const p = compile(input, s);
  const before = costOf(p, p.home);
  const pinnedCount = p.pinned.reduce((n, x) => n + x, 0);
  const none = (reason: string): PlacementPlan => ({
    moves: [],
    predictedCost: { before, after: before },
    netGain: 0,
    reason,
  });
  if (before <= 0) return none("no traffic crosses hosts: nothing to gain");
  if (s.maxMoves === 0) return none("maxMoves is 0: migration is off");

  // Ranked by net gain, a search may spend maxMoves on big changes; ranked by gain per move,
  // on many small ones. The better of the two (the classic remedy for a budgeted greedy).
  let best: { at: Int32Array; steps: Step[]; after: number; objective: number } | null = null;
  for (const rank of ["net", "rate"] as const) {
    const search = new Search(p, { ...s, epsilon: before * 1e-9, rank });
    search.run();
    const steps = bestSchedule(p, search.at);
    const after = costOf(p, search.at);
    const objective = after + s.moveCost * steps.length;
    if (best === null || objective < best.objective - before * 1e-9) {
      best = { at: search.at, steps, after, objective };
    }
  }
  const { at, steps, after } = best!;
  const netGain = before - after - s.moveCost * steps.length;
  const pct = (x: number) => `${Number((100 * x).toFixed(1))}%`;
  if (steps.length === 0) {
    const free = p.slots.reduce((n, k, h) => n + Math.max(0, k - occupancy(p, h)), 0);
    return none(
      `no move or swap gains more than it costs (${pinnedCount} of ${p.vms.length} VMs ` +
        `pinned, ${free} free slot${free === 1 ? "" : "s"}, move cost ${shown(s.moveCost)})`,
    );
  }
  if (netGain < s.minGain * before) {
    return none(
      `no plan gains at least ${pct(s.minGain)} (best: ${steps.length} move` +
        `${steps.length === 1 ? "" : "s"}, ${pct(netGain / before)})`,
    );
  }
  return {
    moves: describeSteps(p, steps, { at, before }),
    predictedCost: { before, after },
    netGain,
    reason: `${steps.length} move${steps.length === 1 ? "" : "s"} cut the cost by ` +
      `${pct((before - after) / before)} (${shown(before)} -> ${shown(after)}), net of move ` +
      `cost ${pct(netGain / before)}`,
  };
}

/**
 * The cost of a placement (see the module doc), for predicting or checking a plan's effect.
 * Edges across pairs with no estimate add nothing.
 *
 * @example
 * ```ts
 * import { placementCost } from "./placement.ts";
 * const underlay = new Map([["h1|h2", { bandwidthBytesPerSec: 1e6, rttMs: 100 }]]);
 * const edges = [{ a: "m1", b: "m2", bytesPerSec: 5e5 }];
 * const c = placementCost(edges, new Map([["m1", "h1"], ["m2", "h2"]]), {
 *   underlay,
 *   latencyWeight: 1,
 * });
 * if (c !== 0.6) throw new Error("0.5 busy + 0.1 s of round trip");
 * ```
 */
export function placementCost(
  edges: readonly VmEdge[],
  vmHost: ReadonlyMap<string, string>,
  options: { underlay: UnderlayCosts; latencyWeight?: number; unknownPath?: PathEstimate | null },
): number {
  const settings = validateSettings({
    maxMoves: 0,
    minGain: 0,
    moveCost: 0,
    latencyWeight: options.latencyWeight,
    unknownPath: options.unknownPath,
  });
  const p = compile(
    { edges, vmHost, slots: new Map(), underlay: options.underlay },
    settings,
    true,
  );
  return costOf(p, p.home);
}

/**
 * The input as the search's arrays (VMs and hosts as indices in name order, edges merged, host
 * pairs priced), validated as {@linkcode planPlacement} does; for the modules behind it.
 *
 * @example
 * ```ts
 * import { compilePlacement } from "./placement.ts";
 * const p = compilePlacement({
 *   edges: [{ a: "m2", b: "m1", bytesPerSec: 1e6 }, { a: "m1", b: "m2", bytesPerSec: 2e6 }],
 *   vmHost: new Map([["m2", "h1"], ["m1", "h2"]]),
 *   slots: new Map([["h1", 1]]),
 *   underlay: new Map(),
 *   settings: { maxMoves: 1, minGain: 0, moveCost: 0 },
 * });
 * if (p.vms.join() !== "m1,m2" || p.home.join() !== "1,0") throw new Error("names sorted");
 * if (p.slots.join() !== "1,0") throw new Error("h2 has no slots");
 * if (p.adjacency[0].bytesPerSec[0] !== 3e6 || p.prices.isPriced(0, 1)) throw new Error("no estimate");
 * ```
 */
export function compilePlacement(input: PlacementInput): Problem {
  return compile(input, validateSettings(input.settings));
}

type Settings = Required<PlacementSettings>;

function validateSettings(s: PlacementSettings): Settings {
  const fail = (key: string, want: string, got: unknown) =>
    new RangeError(`Cannot plan placement: settings.${key} must be ${want}, got ${got}`);
  if (!(Number.isInteger(s.maxMoves) && s.maxMoves >= 0)) {
    throw fail("maxMoves", "an integer >= 0", s.maxMoves);
  }
  if (!(Number.isFinite(s.minGain) && s.minGain >= 0 && s.minGain <= 1)) {
    throw fail("minGain", "a fraction in [0, 1] (0.1 = 10%)", s.minGain);
  }
  if (!(Number.isFinite(s.moveCost) && s.moveCost >= 0)) {
    throw fail("moveCost", "a finite number >= 0", s.moveCost);
  }
  const latencyWeight = s.latencyWeight ?? 0;
  if (!(Number.isFinite(latencyWeight) && latencyWeight >= 0)) {
    throw fail("latencyWeight", "a finite number >= 0", latencyWeight);
  }
  const maxRounds = s.maxRounds ?? DEFAULT_MAX_ROUNDS;
  if (!(Number.isInteger(maxRounds) && maxRounds >= 0)) {
    throw fail("maxRounds", "an integer >= 0", maxRounds);
  }
  const unknownPath = s.unknownPath ?? null;
  if (unknownPath !== null) checkEstimate(unknownPath, "settings.unknownPath");
  return { ...s, latencyWeight, maxRounds, unknownPath };
}

function checkEstimate(e: PathEstimate, what: string): void {
  if (!(Number.isFinite(e.bandwidthBytesPerSec) && e.bandwidthBytesPerSec > 0)) {
    throw new RangeError(
      `Cannot plan placement: ${what} has bandwidthBytesPerSec ${e.bandwidthBytesPerSec}; it ` +
        `must be a finite number > 0 (give no estimate for a pair nothing has measured)`,
    );
  }
  if (!(Number.isFinite(e.rttMs) && e.rttMs >= 0)) {
    throw new RangeError(
      `Cannot plan placement: ${what} has rttMs ${e.rttMs}; it must be a finite number >= 0`,
    );
  }
}

/** The input as index arrays, names sorted; validates slots, edges and estimates. */
function compile(
  input: Omit<PlacementInput, "settings">,
  s: Settings,
  lazyPrices = false,
): Problem {
  const vms = [...input.vmHost.keys()].sort(compare);
  const hosts = [...new Set([...input.slots.keys(), ...input.vmHost.values()])].sort(compare);
  const vmIndex = new Map(vms.map((v, i) => [v, i]));
  const hostIndex = new Map(hosts.map((h, i) => [h, i]));
  const slots = Int32Array.from(hosts, (h) => {
    const k = input.slots.get(h) ?? 0;
    if (!(Number.isInteger(k) && k >= 0)) {
      throw new RangeError(
        `Cannot plan placement: slots of ${h} must be an integer >= 0, got ${k}`,
      );
    }
    return k;
  });
  const pinned = Uint8Array.from(vms, (v) => (input.pinned?.has(v) ? 1 : 0));
  const home = Int32Array.from(vms, (v) => hostIndex.get(input.vmHost.get(v)!)!);

  // Merge both directions and duplicates; sorted first so that sums never depend on order.
  const merged = new Map<number, number>();
  const keyed: [number, number][] = [];
  input.edges.forEach((e, i) => {
    if (!(Number.isFinite(e.bytesPerSec) && e.bytesPerSec >= 0)) {
      throw new RangeError(
        `Cannot plan placement: edges[${i}] (${e.a}-${e.b}) has bytesPerSec ${e.bytesPerSec}; ` +
          `it must be a finite number >= 0`,
      );
    }
    const a = vmIndex.get(e.a);
    const b = vmIndex.get(e.b);
    if (a === undefined || b === undefined || a === b || e.bytesPerSec === 0) return;
    keyed.push([Math.min(a, b) * vms.length + Math.max(a, b), e.bytesPerSec]);
  });
  keyed.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  for (const [k, r] of keyed) merged.set(k, (merged.get(k) ?? 0) + r);
  const lists = vms.map(() => [] as [number, number][]);
  for (const [k, r] of merged) {
    const a = Math.floor(k / vms.length);
    const b = k % vms.length;
    lists[a].push([b, r]);
    lists[b].push([a, r]);
  }
  const adjacency = lists.map((l) => {
    l.sort((x, y) => x[0] - y[0]);
    return {
      peers: Int32Array.from(l, (x) => x[0]),
      bytesPerSec: Float64Array.from(l, (x) => x[1]),
    };
  });

  const lookup = typeof input.underlay === "function"
    ? input.underlay
    : (pair: HostPair) => (input.underlay as ReadonlyMap<HostPair, PathEstimate>).get(pair);
  const prices = new PairPrices(hosts, {
    lookup,
    unknownPath: s.unknownPath,
    latencyWeight: s.latencyWeight,
    check: checkEstimate,
  }, lazyPrices);
  return { vms, hosts, home, slots, pinned, adjacency, prices };
}

/** The gain-ordered schedule, unless ordering by gain cost a stopover the plain order avoids. */
function bestSchedule(p: Problem, at: Int32Array): Step[] {
  const byGain = schedule(p, at, { byGain: true });
  const plain = schedule(p, at, { byGain: false })!;
  return byGain !== null && byGain.length <= plain.length ? byGain : plain;
}

function occupancy(p: Problem, h: number): number {
  return p.home.reduce((n, x) => n + (x === h ? 1 : 0), 0);
}

function shown(x: number): string {
  return Number(x.toPrecision(3)).toString();
}

/** Code-unit order (not locale order): the same on every machine. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
