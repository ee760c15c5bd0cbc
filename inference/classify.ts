/**
 * Names the shape of an application topology graph, as VTTIF reports it: all-to-all, ring,
 * bus (a line), star, tree, 2D mesh, 2D torus, or arbitrary, with the evidence that decided
 * (vertex and edge counts, the degree sequence, the grid's dimensions, components).
 *
 * Cheap tests come first (edge counts, degrees); grids are confirmed by an explicit
 * isomorphism search against the generated mesh or torus, anchored at a corner (mesh) or any
 * vertex (the torus looks the same from everywhere), with a step budget so that a hostile or
 * huge graph costs bounded time and is then called arbitrary.
 *
 * @module
 */

import type { TopologyGraph } from "./topology.ts";

/** The shapes VTTIF names. */
export type TopologyKind =
  | "none"
  | "all-to-all"
  | "ring"
  | "bus"
  | "star"
  | "tree"
  | "mesh"
  | "torus"
  | "arbitrary";

/** What decided the class. */
export interface Evidence {
  vms: number;
  edges: number;
  components: number;
  /** degree -> number of VMs with that degree. */
  degrees: Record<number, number>;
  /** rows x columns, for mesh and torus. */
  dims?: [number, number];
}

/** A named shape with its evidence and a one-line summary for logs and tables. */
export interface Classification {
  kind: TopologyKind;
  evidence: Evidence;
  summary: string;
}

/** Steps the grid isomorphism search may take per candidate shape. */
const SEARCH_BUDGET = 200_000;

type Adjacency = number[][];

function adjacencyOf(g: TopologyGraph): Adjacency {
  const index = new Map(g.vms.map((m, i) => [m, i]));
  const adj: Adjacency = g.vms.map(() => []);
  for (const e of g.edges) {
    const a = index.get(e.a)!;
    const b = index.get(e.b)!;
    adj[a].push(b);
    adj[b].push(a);
  }
  return adj;
}

function components(adj: Adjacency): number {
  const seen = new Uint8Array(adj.length);
  let count = 0;
  for (let s = 0; s < adj.length; s++) {
    if (seen[s]) continue;
    count++;
    const stack = [s];
    seen[s] = 1;
    while (stack.length) {
      for (const w of adj[stack.pop()!]) {
        if (!seen[w]) {
          seen[w] = 1;
          stack.push(w);
        }
      }
    }
  }
  return count;
}

/** The r x c grid (mesh) or, with `wrap`, the torus, as adjacency lists. */
export function gridGraph(rows: number, cols: number, wrap: boolean): Adjacency {
  const adj: Adjacency = Array.from({ length: rows * cols }, () => []);
  const link = (a: number, b: number) => {
    if (a !== b && !adj[a].includes(b)) {
      adj[a].push(b);
      adj[b].push(a);
    }
  };
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const v = r * cols + c;
      if (c + 1 < cols) link(v, v + 1);
      else if (wrap) link(v, r * cols);
      if (r + 1 < rows) link(v, v + cols);
      else if (wrap) link(v, c);
    }
  }
  return adj;
}

/**
 * True when `g` is isomorphic to `h`, searching maps that send `gStart` to `hStart`.
 * Vertices are placed in BFS order from `gStart`, so each one's image must be a neighbour of
 * its BFS parent's image: the search stays local and small for grid-like graphs.
 */
function isomorphicFrom(g: Adjacency, h: Adjacency, gStart: number, hStart: number): boolean {
  const n = g.length;
  const order: number[] = [gStart];
  const parent = new Int32Array(n).fill(-1);
  const seen = new Uint8Array(n);
  seen[gStart] = 1;
  for (let i = 0; i < order.length; i++) {
    for (const w of g[order[i]]) {
      if (!seen[w]) {
        seen[w] = 1;
        parent[w] = order[i];
        order.push(w);
      }
    }
  }
  if (order.length !== n) return false;
  const hSets = h.map((ns) => new Set(ns));
  const map = new Int32Array(n).fill(-1);
  const used = new Uint8Array(n);
  let budget = SEARCH_BUDGET;
  // Backtracking over the vertices in BFS order, with an explicit stack: as a recursion it
  // was one frame per vertex, and a 100,000-VM torus overflowed the call stack. Each level
  // entered costs one unit of the budget, as each call did.
  if (n === 0) return true;
  const candidates: (readonly number[])[] = new Array(n);
  const next = new Int32Array(n);
  const enter = (i: number): boolean => {
    if (--budget < 0) return false;
    candidates[i] = i === 0 ? [hStart] : h[map[parent[order[i]]]];
    next[i] = 0;
    return true;
  };
  if (!enter(0)) return false;
  for (let i = 0; i >= 0;) {
    const v = order[i];
    if (map[v] >= 0) {
      // Back from a deeper level that found nothing: this choice fails too.
      used[map[v]] = 0;
      map[v] = -1;
    }
    const cs = candidates[i];
    while (next[i] < cs.length) {
      const x = cs[next[i]++];
      if (used[x] || h[x].length !== g[v].length) continue;
      let ok = true;
      for (const u of g[v]) {
        if (map[u] >= 0 && !hSets[x].has(map[u])) {
          ok = false;
          break;
        }
      }
      if (!ok) continue;
      map[v] = x;
      used[x] = 1;
      break;
    }
    if (map[v] < 0) {
      i--;
      continue;
    }
    if (i + 1 === n) return true;
    if (!enter(i + 1)) return false;
    i++;
  }
  return false;
}

function factorizations(n: number, min: number): [number, number][] {
  const out: [number, number][] = [];
  for (let r = min; r * r <= n; r++) if (n % r === 0) out.push([r, n / r]);
  return out;
}

function summaryOf(kind: TopologyKind, ev: Evidence): string {
  const degrees = Object.entries(ev.degrees).map(([d, c]) => `${c}x${d}`).join(" ");
  const dims = ev.dims ? ` ${ev.dims[0]}x${ev.dims[1]}` : "";
  const parts = ev.components > 1 ? `, ${ev.components} components` : "";
  return `${kind}${dims}: ${ev.vms} VMs, ${ev.edges} edges, degrees ${degrees || "-"}${parts}`;
}

/**
 * Classifies a topology graph.
 *
 * @example
 * ```ts
 * import { classify } from "./classify.ts";
 * const vm = (i: number) => `02:00:00:00:00:0${i}`;
 * const ring = [1, 2, 3, 4, 5].map((i) => ({ a: vm(i), b: vm(i % 5 + 1), bytesPerSec: 1, weight: 1 }))
 *   .map((e) => (e.a < e.b ? e : { ...e, a: e.b, b: e.a }));
 * const c = classify({ vms: [1, 2, 3, 4, 5].map(vm), edges: ring, maxBytesPerSec: 1 });
 * if (c.kind !== "ring") throw new Error(c.summary);
 * ```
 */
export function classify(g: TopologyGraph): Classification {
  const n = g.vms.length;
  const m = g.edges.length;
  const adj = adjacencyOf(g);
  const degrees: Record<number, number> = {};
  for (const ns of adj) degrees[ns.length] = (degrees[ns.length] ?? 0) + 1;
  const ev: Evidence = { vms: n, edges: m, components: n === 0 ? 0 : components(adj), degrees };
  const done = (kind: TopologyKind): Classification => ({
    kind,
    evidence: ev,
    summary: summaryOf(kind, ev),
  });
  const count = (d: number) => degrees[d] ?? 0;

  if (n === 0) return done("none");
  if (ev.components > 1) return done("arbitrary");
  if (n === 2) return done("bus");
  if (m === (n * (n - 1)) / 2) return done("all-to-all");
  if (m === n && count(2) === n) return done("ring");
  if (m === n - 1) {
    if (count(1) === 2 && count(2) === n - 2) return done("bus");
    if (count(n - 1) === 1 && count(1) === n - 1) return done("star");
    return done("tree");
  }
  for (const [r, c] of factorizations(n, 2)) {
    if (m !== 2 * r * c - r - c || count(2) !== 4) continue;
    const corner = adj.findIndex((ns) => ns.length === 2);
    if (isomorphicFrom(adj, gridGraph(r, c, false), corner, 0)) {
      ev.dims = [r, c];
      return done("mesh");
    }
  }
  if (m === 2 * n && count(4) === n) {
    for (const [r, c] of factorizations(n, 3)) {
      if (isomorphicFrom(adj, gridGraph(r, c, true), 0, 0)) {
        ev.dims = [r, c];
        return done("torus");
      }
    }
  }
  return done("arbitrary");
}
