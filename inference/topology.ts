/**
 * From the smoothed matrix to the application's topology graph: pairs are folded into
 * undirected edges (a BSP exchange goes both ways; the direction is noise for topology),
 * normalised by the heaviest edge, and edges below the detection threshold are pruned.
 *
 * @module
 */

import { undirectedKey } from "./activity.ts";
import { pairOf, type VmIndex } from "./traffic_matrix.ts";

/** One undirected edge between VMs `a` < `b` (MACs). */
export interface TopologyEdge {
  a: string;
  b: string;
  /** Smoothed traffic both ways, bytes/s. */
  bytesPerSec: number;
  /** bytesPerSec / the heaviest edge's: in (threshold, 1]. */
  weight: number;
}

/** The pruned, weighted application graph. */
export interface TopologyGraph {
  /** VMs with at least one edge, sorted. */
  vms: string[];
  /** Edges sorted by (a, b). */
  edges: TopologyEdge[];
  /** The heaviest edge's rate (what weights are relative to), bytes/s. */
  maxBytesPerSec: number;
}

/** The empty graph. */
export const EMPTY_GRAPH: TopologyGraph = { vms: [], edges: [], maxBytesPerSec: 0 };

/**
 * Builds the topology graph from smoothed rates.
 *
 * @param threshold edges lighter than this fraction of the heaviest are pruned
 * @param minBytesPerSec below this even the heaviest edge is silence: the graph is empty
 * @example
 * ```ts
 * import { VmIndex, pairKey } from "./traffic_matrix.ts";
 * import { buildTopology } from "./topology.ts";
 * const vms = new VmIndex();
 * const [a, b, c] = ["02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:03"].map((m) => vms.idOf(m));
 * const rates = new Map([[pairKey(a, b), 900], [pairKey(b, a), 100], [pairKey(a, c), 5]]);
 * const g = buildTopology(rates, vms, { threshold: 0.1 });
 * if (g.edges.length !== 1 || g.edges[0].bytesPerSec !== 1000) throw new Error("pruned");
 * ```
 */
export function buildTopology(
  rates: ReadonlyMap<number, number>,
  vms: VmIndex,
  options: {
    threshold: number;
    minBytesPerSec?: number;
    /** Which undirected pairs may be edges at all (see inference/activity.ts); default all. */
    admit?: (undirectedKey: number) => boolean;
  },
): TopologyGraph {
  // Fold directions: key the undirected edge by (min id, max id).
  const undirected = new Map<number, number>();
  for (const [k, r] of rates) {
    const key = undirectedKey(k);
    undirected.set(key, (undirected.get(key) ?? 0) + r);
  }
  if (options.admit) {
    for (const k of undirected.keys()) if (!options.admit(k)) undirected.delete(k);
  }
  let max = 0;
  for (const r of undirected.values()) if (r > max) max = r;
  if (max <= (options.minBytesPerSec ?? 1)) return EMPTY_GRAPH;
  const edges: TopologyEdge[] = [];
  const members = new Set<string>();
  for (const [k, r] of undirected) {
    const w = r / max;
    if (w < options.threshold) continue;
    const [s, d] = pairOf(k);
    let a = vms.macOf(s);
    let b = vms.macOf(d);
    if (a > b) [a, b] = [b, a];
    edges.push({ a, b, bytesPerSec: r, weight: w });
    members.add(a);
    members.add(b);
  }
  edges.sort((x, y) => (x.a < y.a ? -1 : x.a > y.a ? 1 : x.b < y.b ? -1 : x.b > y.b ? 1 : 0));
  return { vms: [...members].sort(), edges, maxBytesPerSec: max };
}

/** The edge set as text keys `a-b`, for comparing graphs. */
export function edgeKeys(g: TopologyGraph): Set<string> {
  return new Set(g.edges.map((e) => `${e.a}-${e.b}`));
}
