/**
 * The changes the placement search (adapt/placement_search.ts) may take, priced from its rows
 * without touching its state. Each kind exists because the simpler ones miss a local optimum:
 *
 *     move       x to a host with a free slot
 *     swap       x into y's full host, y into x's
 *     ejection   x into y's full host, y to its own best free slot
 *     neighbour  x to h with a VM y it talks to: y to h too, into the slot x leaves, or to
 *                y's best free slot (y alone would lose, e.g. across an unpriced pair)
 *     group      x with the VMs it talks to on its host, or with all it talks to, to h (a
 *                clique or a star where each VM, or each pair, alone would lose)
 *
 * Beyond ALL_HOSTS hosts, neighbour and group moves only try hosts where their VMs have peers
 * and the VMs' best free hosts: elsewhere their other edges would all cross, and trying every
 * host costs O(edges x hosts) per scan.
 *
 * @module
 */

import { edgeBad, edgeCost, type SearchState } from "./placement_problem.ts";

/** A change: `vms[i]` goes to `to[i]`, all together. */
export interface Change {
  vms: number[];
  to: number[];
  /** Decrease of the cost. */
  gain: number;
  /** gain - moveCost x displacedDelta: the ranking estimate. */
  net: number;
  /** Change of the number of VMs away from home. */
  displacedDelta: number;
}

/** Up to this many hosts, neighbour and group moves try every host. */
const ALL_HOSTS = 16;

/**
 * Whether the hosts the VMs go to have room now, each host's arrivals net of its departures.
 *
 * @example
 * ```ts
 * import { compilePlacement } from "./placement.ts";
 * import { room } from "./placement_moves.ts";
 * import { Search } from "./placement_search.ts";
 * const p = compilePlacement({
 *   edges: [],
 *   vmHost: new Map([["m1", "h1"], ["m2", "h2"]]),
 *   slots: new Map([["h1", 1], ["h2", 1]]),
 *   underlay: new Map(),
 *   settings: { maxMoves: 2, minGain: 0, moveCost: 0 },
 * });
 * const s = new Search(p, { maxMoves: 2, moveCost: 0, maxRounds: 1, epsilon: 0, rank: "net" });
 * if (room(s, [0], [1]) || !room(s, [0, 1], [1, 0])) throw new Error("h2 is full; a swap fits");
 * ```
 */
export function room(s: SearchState, vms: readonly number[], to: readonly number[]): boolean {
  for (const h of to) {
    let arrivals = 0;
    for (let j = 0; j < vms.length; j++) {
      if (to[j] === h) arrivals++;
      if (s.at[vms[j]] === h) arrivals--;
    }
    if (arrivals > s.p.slots[h] - s.occupancy[h]) return false;
  }
  return true;
}

/**
 * The `keep` best changes that pay by estimate (net > epsilon), best first, and apart the
 * `keep` best that only maxMoves holds back, in {@linkcode byRank} order (options.rank of the
 * search). Greedy: only VMs still at home move; `only`: only changes led by these VMs.
 *
 * @example
 * ```ts
 * import { compilePlacement } from "./placement.ts";
 * import { bestChanges } from "./placement_moves.ts";
 * import { Search } from "./placement_search.ts";
 * const p = compilePlacement({
 *   edges: [{ a: "m1", b: "m2", bytesPerSec: 1e6 }, { a: "m2", b: "m3", bytesPerSec: 1e6 }],
 *   vmHost: new Map([["m1", "h1"], ["m2", "h2"], ["m3", "h2"]]),
 *   slots: new Map([["h1", 3], ["h2", 2]]),
 *   underlay: new Map([["h1|h2", { bandwidthBytesPerSec: 1e6, rttMs: 1 }]]),
 *   settings: { maxMoves: 2, minGain: 0, moveCost: 0 },
 * });
 * const s = new Search(p, { maxMoves: 2, moveCost: 0, maxRounds: 1, epsilon: 1e-12, rank: "net" });
 * const [best] = bestChanges(s, { greedy: true, keep: 4 }).top;
 * if (best.vms.join() !== "1,2" || best.to.join() !== "0,0") throw new Error("m2, m3 join m1");
 * ```
 */
export function bestChanges(
  s: SearchState,
  options: { greedy: boolean; keep: number; only?: ReadonlySet<number> },
): { top: Change[]; blocked: Change[] } {
  const scan = new Scan(s, options);
  scan.movesSwapsEjections();
  scan.neighbourMoves();
  scan.groupMoves();
  return { top: scan.top, blocked: scan.blocked };
}

/** One pass over the neighbourhoods, keeping the best changes. */
class Scan {
  readonly top: Change[] = [];
  readonly blocked: Change[] = [];
  readonly #s: SearchState;
  readonly #keep: number;
  readonly #order: (a: Change, b: Change) => number;
  readonly #greedy: boolean;
  readonly #only: ReadonlySet<number> | undefined;
  readonly #H: number;
  readonly #bestFree: Int32Array;
  /** VMs of the group being priced (== #stamp). */
  readonly #inGroup: Int32Array;
  /** Hosts already listed by #destinations (== #stamp), and the list. */
  readonly #listed: Int32Array;
  readonly #hosts: Int32Array;
  #stamp = 0;
  #dCost = 0;
  #dBad = 0;

  constructor(
    s: SearchState,
    options: { greedy: boolean; keep: number; only?: ReadonlySet<number> },
  ) {
    this.#s = s;
    this.#keep = options.keep;
    this.#order = byRank(s.options.rank);
    this.#greedy = options.greedy;
    this.#only = options.only;
    this.#H = s.p.hosts.length;
    this.#inGroup = new Int32Array(s.p.vms.length);
    this.#listed = new Int32Array(this.#H);
    this.#hosts = new Int32Array(this.#H);
    this.#bestFree = this.#findBestFree();
  }

  #movable(v: number): boolean {
    return !this.#s.p.pinned[v] && (!this.#greedy || this.#s.at[v] === this.#s.p.home[v]);
  }

  /** Whether changes led by v are scanned. */
  #leads(v: number): boolean {
    return this.#movable(v) && (this.#only === undefined || this.#only.has(v));
  }

  /** Change of the number of VMs away from home if VM v goes to h. */
  #displacedDelta(v: number, h: number): number {
    const home = this.#s.p.home[v];
    return (h !== home ? 1 : 0) - (this.#s.at[v] !== home ? 1 : 0);
  }

  /** Per movable VM, the host with a free slot its edges cost least on (-1: none). */
  #findBestFree(): Int32Array {
    const { p, at, occupancy, rowCost, rowBad, options } = this.#s;
    const H = this.#H;
    const best = new Int32Array(p.vms.length).fill(-1);
    for (let v = 0; v < p.vms.length; v++) {
      if (!this.#movable(v)) continue;
      let bestCost = Infinity;
      for (let h = 0; h < H; h++) {
        if (h === at[v] || occupancy[h] >= p.slots[h] || rowBad[v * H + h]) continue;
        const c = rowCost[v * H + h] + options.moveCost * this.#displacedDelta(v, h);
        if (c < bestCost) [best[v], bestCost] = [h, c];
      }
    }
    return best;
  }

  /** Moves, and swaps and ejections seen from the VM that goes into the full host. */
  movesSwapsEjections(): void {
    const { p, at, occupancy, rowCost, rowBad, members, options } = this.#s;
    const H = this.#H;
    const weight = new Float64Array(p.vms.length);
    for (let x = 0; x < p.vms.length; x++) {
      if (!this.#leads(x)) continue;
      const a = at[x];
      const { peers, bytesPerSec } = p.adjacency[x];
      for (let i = 0; i < peers.length; i++) weight[peers[i]] = bytesPerSec[i];
      for (let hx = 0; hx < H; hx++) {
        if (hx === a) continue;
        const dx = this.#displacedDelta(x, hx);
        const netX = rowCost[x * H + a] - rowCost[x * H + hx] - options.moveCost * dx;
        // A two-VM change gains at most the sum of its halves: x's half must pay (or y's,
        // and then it is found from y).
        if (!(netX > 0)) continue;
        if (occupancy[hx] < p.slots[hx]) {
          // Room for x: a swap or ejection of a y it does not talk to is two single moves,
          // and of a y it talks to, a neighbour move.
          if (rowBad[x * H + hx] === 0) this.#offer([x], [hx], netX + options.moveCost * dx, dx);
          continue;
        }
        for (const y of members[hx]) {
          if (!this.#movable(y)) continue;
          for (let k = 0; k < 2; k++) {
            const hy = k === 0 ? a : this.#bestFree[y];
            if (k === 1 && (hy < 0 || hy === a)) continue;
            this.#delta2(x, hx, y, hy, weight[y]);
            if (this.#dBad > 0) continue;
            const dd = dx + this.#displacedDelta(y, hy);
            // A swap is found from both VMs: name it by the smaller one.
            if (hy === a && y < x) this.#offer([y, x], [a, hx], -this.#dCost, dd);
            else this.#offer([x, y], [hx, hy], -this.#dCost, dd);
          }
        }
      }
      for (const w of peers) weight[w] = 0;
    }
  }

  /** x to h with a peer y: y to h too, into the slot x leaves, or to its best free slot. */
  neighbourMoves(): void {
    const { p, at } = this.#s;
    for (let x = 0; x < p.vms.length; x++) {
      if (!this.#leads(x)) continue;
      const { peers, bytesPerSec } = p.adjacency[x];
      for (let i = 0; i < peers.length; i++) {
        const y = peers[i];
        if (!this.#movable(y)) continue;
        const n = this.#destinations([x, y]);
        for (let j = 0; j < n; j++) {
          const h = this.#hosts[j];
          if (h === at[x]) continue;
          for (let k = 0; k < 3; k++) {
            const hy = k === 0 ? h : k === 1 ? at[x] : this.#bestFree[y];
            // Each pair move once; y staying is x's own move; the best free slot if new.
            if ((k === 0 && y < x) || hy < 0 || hy === at[y]) continue;
            if (k === 2 && (hy === h || hy === at[x])) continue;
            if (!this.#room2(x, h, y, hy)) continue;
            this.#delta2(x, h, y, hy, bytesPerSec[i]);
            const dd = this.#displacedDelta(x, h) + this.#displacedDelta(y, hy);
            if (this.#dBad === 0) this.#offer([x, y], [h, hy], -this.#dCost, dd);
          }
        }
      }
    }
  }

  /**
   * x with the movable VMs it talks to on its host, or with all it talks to, together to h
   * (three VMs or more; two are neighbour moves).
   */
  groupMoves(): void {
    const { p, at } = this.#s;
    for (let x = 0; x < p.vms.length; x++) {
      if (!this.#leads(x)) continue;
      const peers = [...p.adjacency[x].peers].filter((u) => this.#movable(u));
      const local = peers.filter((u) => at[u] === at[x]);
      if (local.length >= 2) this.#group([x, ...local]);
      if (peers.length >= 2 && peers.length > local.length) this.#group([x, ...peers]);
    }
  }

  #group(group: number[]): void {
    const { p, at, rowCost, rowBad } = this.#s;
    const H = this.#H;
    const n = this.#destinations(group);
    const stamp = ++this.#stamp;
    for (const v of group) this.#inGroup[v] = stamp;
    for (let j = 0; j < n; j++) {
      const h = this.#hosts[j];
      if (p.slots[h] - this.#s.occupancy[h] < group.length || group.some((v) => at[v] === h)) {
        continue;
      }
      let cost = 0;
      let bad = 0;
      let dd = 0;
      for (const v of group) {
        cost += rowCost[v * H + h] - rowCost[v * H + at[v]];
        bad += rowBad[v * H + h];
        dd += this.#displacedDelta(v, h);
        // Edges inside the group end on h. v's row priced each from h to the peer's host, and
        // the rows of both ends priced it as it is now.
        const { peers, bytesPerSec } = p.adjacency[v];
        for (let i = 0; i < peers.length; i++) {
          const u = peers[i];
          if (this.#inGroup[u] !== stamp) continue;
          cost -= edgeCost(p, bytesPerSec[i], h, at[u]) -
            edgeCost(p, bytesPerSec[i], at[v], at[u]) / 2;
          bad -= edgeBad(p, h, at[u], h === p.home[v] && at[u] === p.home[u]);
        }
      }
      if (bad === 0) this.#offer(group, group.map(() => h), -cost, dd);
    }
  }

  /** Lists the hosts worth trying for `vms` (see the module doc) in #hosts; returns how many. */
  #destinations(vms: number[]): number {
    const { p, at } = this.#s;
    const stamp = ++this.#stamp;
    let n = 0;
    const add = (h: number) => {
      if (h >= 0 && this.#listed[h] !== stamp) [this.#listed[h], this.#hosts[n++]] = [stamp, h];
    };
    if (this.#H <= ALL_HOSTS) {
      for (let h = 0; h < this.#H; h++) add(h);
      return n;
    }
    for (const v of vms) {
      for (const u of p.adjacency[v].peers) add(at[u]);
      add(this.#bestFree[v]);
    }
    return n;
  }

  /** Whether x can go to hx and y to hy together (each may take the slot the other leaves). */
  #room2(x: number, hx: number, y: number, hy: number): boolean {
    const { p, at, occupancy } = this.#s;
    const free = (h: number) => p.slots[h] - occupancy[h];
    if (hx === hy) return free(hx) >= 2;
    return (hx === at[y] ? free(hx) >= 0 : free(hx) >= 1) &&
      (hy === at[x] ? free(hy) >= 0 : free(hy) >= 1);
  }

  /**
   * Sets #dCost and #dBad to the cost change and the new unpriced crossings if x goes to hx and
   * y to hy together; `t` is the traffic between them (0: no edge).
   */
  #delta2(x: number, hx: number, y: number, hy: number, t: number): void {
    const { p, at, rowCost, rowBad } = this.#s;
    const H = this.#H;
    const ax = at[x];
    const ay = at[y];
    this.#dCost = rowCost[x * H + hx] - rowCost[x * H + ax] + rowCost[y * H + hy] -
      rowCost[y * H + ay];
    this.#dBad = rowBad[x * H + hx] + rowBad[y * H + hy];
    if (t === 0) return;
    // The shared edge was priced in each row with the other VM left in place.
    this.#dCost += edgeCost(p, t, hx, hy) - edgeCost(p, t, hx, ay) - edgeCost(p, t, ax, hy) +
      edgeCost(p, t, ax, ay);
    const xHome = hx === p.home[x];
    const yHome = hy === p.home[y];
    const axHome = ax === p.home[x];
    const ayHome = ay === p.home[y];
    this.#dBad += edgeBad(p, hx, hy, xHome && yHome) - edgeBad(p, hx, ay, xHome && ayHome) -
      edgeBad(p, ax, hy, axHome && yHome) + edgeBad(p, ax, ay, axHome && ayHome);
  }

  #keyOf(c: Change): number {
    return this.#s.options.rank === "net" ? c.net : c.net / Math.max(1, c.displacedDelta);
  }

  /** Keeps the change if it pays and ranks among the best (apart: if maxMoves holds it back). */
  #offer(vms: number[], to: number[], gain: number, displacedDelta: number): void {
    const { maxMoves, moveCost, epsilon } = this.#s.options;
    const net = gain - moveCost * displacedDelta;
    if (!(net > epsilon)) return;
    const top = this.#s.displaced + displacedDelta > maxMoves ? this.blocked : this.top;
    const full = top.length === this.#keep;
    const key = this.#s.options.rank === "net" ? net : net / Math.max(1, displacedDelta);
    if (full && key < this.#keyOf(top[top.length - 1])) return;
    const c: Change = { vms, to, gain, net, displacedDelta };
    const order = this.#order;
    if (full && order(c, top[top.length - 1]) >= 0) return;
    let i = top.length - (top.length === this.#keep ? 1 : 0);
    top[i] = c;
    for (; i > 0 && order(top[i], top[i - 1]) < 0; i--) [top[i], top[i - 1]] = [top[i - 1], top[i]];
  }
}

/**
 * Orders changes best first: by net gain ("net"), or by net gain per VM it sends away
 * ("rate", for when maxMoves binds); then fewer displaced VMs, fewer VMs, by index (= name).
 */
export function byRank(rank: "net" | "rate"): (a: Change, b: Change) => number {
  const key = rank === "net"
    ? (c: Change) => c.net
    : (c: Change) => c.net / Math.max(1, c.displacedDelta);
  return (a, b) => {
    const d = key(b) - key(a) || a.displacedDelta - b.displacedDelta ||
      a.vms.length - b.vms.length;
    if (d !== 0) return d;
    for (let i = 0; i < a.vms.length; i++) {
      const e = a.vms[i] - b.vms[i] || a.to[i] - b.to[i];
      if (e !== 0) return e;
    }
    return 0;
  };
}
