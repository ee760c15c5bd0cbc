/**
 * The communication topologies of the Patterns benchmark: which ranks a rank sends to and
 * receives from in one bulk-synchronous iteration.
 *
 * Every rank computes its own lists from `(topology, rank, size)` alone, so the ranks agree
 * without talking: `s` is in `sendTo` of `r` exactly when `r` is in `receiveFrom` of `s`.
 * For the symmetric topologies (all-to-all, bus, ring, mesh, tree) the two lists are equal;
 * reduction and broadcast are one-way stars around rank 0. Lists are sorted, never contain
 * the rank itself and never repeat a rank (a ring of two has one neighbour).
 *
 * @module
 */

/** Topology names, as the CLI spells them. */
export const TOPOLOGIES = [
  "all-to-all",
  "bus",
  "ring",
  "mesh",
  "tree",
  "reduction",
  "broadcast",
] as const;

/** One of {@linkcode TOPOLOGIES}. */
export type Topology = typeof TOPOLOGIES[number];

/** The peers of one rank in one iteration. */
export interface Neighbours {
  /** Ranks this rank sends one message to, ascending. */
  sendTo: number[];
  /** Ranks this rank receives one message from, ascending. */
  receiveFrom: number[];
}

/** Shape of a 2D mesh; rows x cols must equal the number of ranks. */
export interface MeshShape {
  rows: number;
  cols: number;
}

/** Options of {@linkcode neighbours}. */
export interface NeighbourOptions {
  /** Mesh shape; default {@linkcode squarestMesh} of the size. Ignored by other topologies. */
  mesh?: MeshShape;
}

/**
 * Whether `name` is a topology (for parsing flags).
 *
 * @example
 * ```ts
 * import { isTopology } from "./topology.ts";
 * if (!isTopology("ring") || isTopology("star")) throw new Error("unexpected");
 * ```
 */
export function isTopology(name: string): name is Topology {
  return (TOPOLOGIES as readonly string[]).includes(name);
}

/**
 * The mesh of `size` ranks closest to a square: rows is the largest divisor of `size` not
 * above its square root, so a prime size degenerates to a single row (a bus).
 *
 * @example
 * ```ts
 * import { squarestMesh } from "./topology.ts";
 * const m = squarestMesh(12);
 * if (m.rows !== 3 || m.cols !== 4) throw new Error("unexpected");
 * ```
 */
export function squarestMesh(size: number): MeshShape {
  checkSize(size);
  let rows = Math.floor(Math.sqrt(size));
  while (size % rows !== 0) rows--;
  return { rows, cols: size / rows };
}

/**
 * The ranks `rank` sends to and receives from in one iteration of `topology` on `size` ranks.
 *
 * - `all-to-all`: every other rank.
 * - `bus`: a line, `rank - 1` and `rank + 1`.
 * - `ring`: a bus whose ends meet.
 * - `mesh`: a 2D grid without wrap-around, row-major numbering; up, left, right, down.
 * - `tree`: a binary tree in heap numbering; the parent `(rank - 1) >> 1` and the children
 *   `2 rank + 1`, `2 rank + 2`.
 * - `reduction`: every rank sends to rank 0, which receives from all.
 * - `broadcast`: rank 0 sends to all, each receives from rank 0.
 *
 * Throws a `RangeError` for a rank outside `0..size-1`, a size below 1 or a mesh shape whose
 * area is not `size`.
 *
 * @example
 * ```ts
 * import { neighbours } from "./topology.ts";
 * const ring = neighbours("ring", 0, 4);
 * if (ring.sendTo.join() !== "1,3" || ring.receiveFrom.join() !== "1,3") throw new Error("ring");
 * const reduce = neighbours("reduction", 2, 4);
 * if (reduce.sendTo.join() !== "0" || reduce.receiveFrom.length !== 0) throw new Error("reduce");
 * const grid = neighbours("mesh", 4, 9, { mesh: { rows: 3, cols: 3 } });
 * if (grid.sendTo.join() !== "1,3,5,7") throw new Error("mesh");
 * ```
 */
export function neighbours(
  topology: Topology,
  rank: number,
  size: number,
  options: NeighbourOptions = {},
): Neighbours {
  checkSize(size);
  if (!Number.isInteger(rank) || rank < 0 || rank >= size) {
    throw new RangeError(`Cannot compute neighbours: rank ${rank} is outside 0..${size - 1}`);
  }
  switch (topology) {
    case "all-to-all":
      return symmetric(range(size).filter((r) => r !== rank));
    case "bus":
      return symmetric([rank - 1, rank + 1].filter((r) => r >= 0 && r < size));
    case "ring":
      return symmetric(distinct([(rank + size - 1) % size, (rank + 1) % size], rank));
    case "mesh":
      return symmetric(meshNeighbours(rank, size, options.mesh ?? squarestMesh(size)));
    case "tree":
      return symmetric(
        [(rank - 1) >> 1, 2 * rank + 1, 2 * rank + 2].filter((r) => r >= 0 && r < size),
      );
    case "reduction":
      return rank === 0
        ? { sendTo: [], receiveFrom: range(size).slice(1) }
        : { sendTo: [0], receiveFrom: [] };
    case "broadcast":
      return rank === 0
        ? { sendTo: range(size).slice(1), receiveFrom: [] }
        : { sendTo: [], receiveFrom: [0] };
    default:
      throw new TypeError(`Cannot compute neighbours: unknown topology "${topology}"`);
  }
}

function meshNeighbours(rank: number, size: number, { rows, cols }: MeshShape): number[] {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows * cols !== size) {
    throw new RangeError(`Cannot build a ${rows}x${cols} mesh of ${size} ranks`);
  }
  const row = Math.floor(rank / cols);
  const col = rank % cols;
  const out: number[] = [];
  // Pushed in ascending order: up < left < right < down.
  if (row > 0) out.push(rank - cols);
  if (col > 0) out.push(rank - 1);
  if (col + 1 < cols) out.push(rank + 1);
  if (row + 1 < rows) out.push(rank + cols);
  return out;
}

function checkSize(size: number): void {
  if (!Number.isInteger(size) || size < 1) {
    throw new RangeError(`Cannot compute neighbours: size must be an integer >= 1, got ${size}`);
  }
}

/** The same peers both ways, as separate arrays so that callers may own each. */
function symmetric(peers: number[]): Neighbours {
  return { sendTo: peers, receiveFrom: [...peers] };
}

/** Sorted, without repeats and without `self` (small rings wrap onto themselves). */
function distinct(ranks: number[], self: number): number[] {
  return [...new Set(ranks)].filter((r) => r !== self).sort((a, b) => a - b);
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
