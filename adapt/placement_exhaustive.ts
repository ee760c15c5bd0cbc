/**
 * The reference model of {@linkcode planPlacement}: the slow, obviously correct optimum of a
 * small instance, which the planner's tests and benchmark compare against.
 *
 *     the placement now --(one migration: an unpinned VM into a host with a free slot)-->
 *       breadth first, to depth maxMoves: every placement reachable, by its fewest migrations
 *       -> admissible? (no edge newly across a pair with no estimate)
 *       -> the least cost + moveCost x migrations
 *
 * It shares nothing with the planner but the input types: the cost is summed edge by edge from
 * the input, and the migrations a placement needs are found by the search itself, so stopovers
 * through a free slot are counted exactly.
 *
 * @module
 */

import type { PathEstimate, PlacementInput } from "./placement.ts";
import { hostPair } from "./planner.ts";

/** The most VMs an exhaustive search takes (4^8 = 65,536 placements). */
export const EXHAUSTIVE_MAX_VMS = 8;
/** The most hosts an exhaustive search takes. */
export const EXHAUSTIVE_MAX_HOSTS = 4;

/** The best placement reachable within the move bound. */
export interface Optimum {
  /** cost + moveCost x moves: what the planner minimises. */
  objective: number;
  cost: number;
  /** Fewest migrations that reach `placement`. */
  moves: number;
  /** VM -> host. */
  placement: Map<string, string>;
}

/**
 * The optimum of `input` (settings.minGain is not applied: this is the best the moves can do).
 *
 * @throws {RangeError} beyond {@linkcode EXHAUSTIVE_MAX_VMS} VMs or
 *   {@linkcode EXHAUSTIVE_MAX_HOSTS} hosts
 * @example
 * ```ts
 * import { exhaustivePlacement } from "./placement_exhaustive.ts";
 * const fast = { bandwidthBytesPerSec: 1e8, rttMs: 1 };
 * const best = exhaustivePlacement({
 *   edges: [{ a: "m1", b: "m2", bytesPerSec: 1e7 }],
 *   vmHost: new Map([["m1", "h1"], ["m2", "h2"]]),
 *   slots: new Map([["h1", 1], ["h2", 1], ["h3", 2]]),
 *   underlay: (pair) => (pair === "h1|h2" ? { bandwidthBytesPerSec: 1e6, rttMs: 1 } : fast),
 *   settings: { maxMoves: 2, minGain: 0, moveCost: 0.01 },
 * });
 * if (best.moves !== 2 || best.placement.get("m1") !== "h3") throw new Error("both to h3");
 * ```
 */
export function exhaustivePlacement(input: PlacementInput): Optimum {
  const vms = [...input.vmHost.keys()].sort();
  const hosts = [...new Set([...input.slots.keys(), ...input.vmHost.values()])].sort();
  if (vms.length > EXHAUSTIVE_MAX_VMS || hosts.length > EXHAUSTIVE_MAX_HOSTS) {
    throw new RangeError(
      `Cannot search exhaustively: ${vms.length} VMs on ${hosts.length} hosts; at most ` +
        `${EXHAUSTIVE_MAX_VMS} VMs and ${EXHAUSTIVE_MAX_HOSTS} hosts`,
    );
  }
  const home = vms.map((v) => hosts.indexOf(input.vmHost.get(v)!));
  const costOf = costFunction(input, vms, hosts, home);
  const H = hosts.length;
  const slots = hosts.map((h) => input.slots.get(h) ?? 0);
  const movable = vms.map((v) => !input.pinned?.has(v));
  const encode = (at: number[]) => at.reduce((code, h) => code * H + h, 0);
  const decode = (code: number) =>
    vms.map((_, v) => Math.floor(code / H ** (vms.length - 1 - v)) % H);

  // Breadth first: a placement is first reached by its fewest migrations.
  const depth = new Map<number, number>([[encode(home), 0]]);
  const queue = [encode(home)];
  let best: Optimum | null = null;
  for (let i = 0; i < queue.length; i++) {
    const at = decode(queue[i]);
    const d = depth.get(queue[i])!;
    const cost = costOf(at);
    const objective = cost === null ? Infinity : cost + input.settings.moveCost * d;
    if (cost !== null && (best === null || objective < best.objective)) {
      const placement = new Map(vms.map((v, j) => [v, hosts[at[j]]]));
      best = { objective, cost, moves: d, placement };
    }
    if (d === input.settings.maxMoves) continue;
    const occupancy = hosts.map((_, h) => at.filter((x) => x === h).length);
    for (let v = 0; v < vms.length; v++) {
      for (let h = 0; h < H; h++) {
        if (!movable[v] || h === at[v] || occupancy[h] >= slots[h]) continue;
        const code = encode(at.map((x, j) => (j === v ? h : x)));
        if (depth.has(code)) continue;
        depth.set(code, d + 1);
        queue.push(code);
      }
    }
  }
  // The placement now is always admissible: every edge crosses where it crossed.
  return best!;
}

/** The cost of a placement (host indices), or null when an edge newly crosses an unknown pair. */
function costFunction(
  input: PlacementInput,
  vms: string[],
  hosts: string[],
  home: number[],
): (at: number[]) => number | null {
  const s = input.settings;
  const lookup = (a: number, b: number): PathEstimate | null => {
    const pair = hostPair(hosts[a], hosts[b]);
    const u = input.underlay;
    const e = typeof u === "function" ? u(pair) : u.get(pair);
    return e ?? s.unknownPath ?? null;
  };
  // One edge per VM pair, both directions summed; an edge with no traffic is no edge.
  const byPair = new Map<string, { a: number; b: number; t: number }>();
  for (const e of input.edges) {
    const [a, b] = [vms.indexOf(e.a), vms.indexOf(e.b)].sort((x, y) => x - y);
    if (a < 0 || a === b || e.bytesPerSec === 0) continue;
    const edge = byPair.get(`${a}-${b}`) ?? { a, b, t: 0 };
    edge.t += e.bytesPerSec;
    byPair.set(`${a}-${b}`, edge);
  }
  const edges = [...byPair.values()];
  return (at) => {
    let sum = 0;
    for (const e of edges) {
      const [ha, hb] = [at[e.a], at[e.b]];
      if (ha === hb) continue;
      const path = lookup(ha, hb);
      if (path === null) {
        if (ha !== home[e.a] || hb !== home[e.b]) return null;
        continue;
      }
      sum += e.t / path.bandwidthBytesPerSec + (s.latencyWeight ?? 0) * path.rttMs / 1000;
    }
    return sum;
  };
}
