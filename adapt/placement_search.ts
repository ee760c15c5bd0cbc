/**
 * The search behind `planPlacement` (adapt/placement.ts), over arrays: VMs and hosts are
 * indices in name order, so every tie broken by index is broken by name.
 *
 *     home placement
 *       -> greedy: among VMs still at home, the best change that pays (adapt/placement_moves.ts:
 *          a move, a swap, an ejection, a neighbour move, a group move); until none pays
 *       -> local search: the same changes of any VM (re-target, send home), and, when none
 *          pays, an exchange (send one moved VM home and spend its move better); bounded rounds
 *       -> the final placement (adapt/placement_problem.ts turns it into migrations)
 *
 * The state is the *final* placement. For every VM v and host h the search keeps `rowCost`:
 * the cost of v's edges were v on h (the other VMs where they are now), and `rowBad`: how many
 * of them would cross an unpriced pair that is not the one they crossed at home. A move
 * updates only its neighbours' rows, so a change of one VM is priced in O(1) and of several in
 * O(1) plus the edges among them. A change is taken only after its exact schedule is built: it
 * must fit in maxMoves and gain more than the moves it adds cost. A round takes its best change
 * and then every next-best one that touches no VM whose row the taken ones changed (their
 * prices are still exact): nearly the choices of one change per round (a change that the
 * taken ones made possible waits for the next round), in far fewer scans.
 *
 * @module
 */

import { bestChanges, byRank, type Change, room } from "./placement_moves.ts";
import {
  edgeBad,
  edgeCost,
  type Problem,
  schedule,
  type SearchOptions,
  type SearchState,
} from "./placement_problem.ts";

/** Changes kept per scan, the best first (their schedule may not fit). */
const TRIES = 32;

/** Moved VMs that an exchange tries sending home, per round. */
const EXCHANGES = 4;

/**
 * The final placement under search, with the rows that price changes to it.
 *
 * @example
 * ```ts
 * import { compilePlacement } from "./placement.ts";
 * import { Search } from "./placement_search.ts";
 * const p = compilePlacement({
 *   edges: [{ a: "m1", b: "m2", bytesPerSec: 1e6 }],
 *   vmHost: new Map([["m1", "h1"], ["m2", "h2"]]),
 *   slots: new Map([["h1", 1], ["h2", 1], ["h3", 2]]),
 *   underlay: (pair) => ({ bandwidthBytesPerSec: pair === "h1|h2" ? 1e6 : 1e8, rttMs: 1 }),
 *   settings: { maxMoves: 2, minGain: 0, moveCost: 0 },
 * });
 * const search = new Search(p, {
 *   maxMoves: 2,
 *   moveCost: 0,
 *   maxRounds: 100,
 *   epsilon: 1e-12,
 *   rank: "net",
 * });
 * search.run();
 * // Neither host has room for the other VM: the pair moves together to h3.
 * if (search.at.join() !== "2,2" || search.moves !== 2) throw new Error(search.at.join());
 * ```
 */
export class Search implements SearchState {
  readonly p: Problem;
  readonly options: SearchOptions;
  readonly at: Int32Array;
  readonly occupancy: Int32Array;
  readonly rowCost: Float64Array;
  readonly rowBad: Int32Array;
  readonly members: Set<number>[];
  displaced = 0;
  /** Exact migrations the current placement takes. */
  moves = 0;
  /** VMs whose rows changed in the current round (equal to #stamp). */
  readonly #touched: Int32Array;
  #stamp = 0;

  constructor(p: Problem, options: SearchOptions) {
    const n = p.vms.length;
    const H = p.hosts.length;
    this.p = p;
    this.options = options;
    this.at = Int32Array.from(p.home);
    this.occupancy = new Int32Array(H);
    this.members = Array.from({ length: H }, () => new Set<number>());
    for (let v = 0; v < n; v++) {
      this.occupancy[p.home[v]]++;
      this.members[p.home[v]].add(v);
    }
    this.#touched = new Int32Array(n);
    this.rowCost = new Float64Array(n * H);
    this.rowBad = new Int32Array(n * H);
    for (let v = 0; v < n; v++) {
      const { peers, bytesPerSec } = p.adjacency[v];
      for (let i = 0; i < peers.length; i++) {
        const g = p.home[peers[i]];
        for (let h = 0; h < H; h++) {
          this.rowCost[v * H + h] += edgeCost(p, bytesPerSec[i], h, g);
          this.rowBad[v * H + h] += edgeBad(p, h, g, h === p.home[v]);
        }
      }
    }
  }

  /** Greedy, then local search; returns the rounds each took. */
  run(): { greedyRounds: number; localRounds: number } {
    let greedyRounds = 0;
    while (this.#takeSome(bestChanges(this, { greedy: true, keep: TRIES }).top)) greedyRounds++;
    let localRounds = 0;
    while (localRounds < this.options.maxRounds) {
      const { top, blocked } = bestChanges(this, { greedy: false, keep: TRIES });
      if (!this.#takeSome(top) && !this.#exchange(blocked)) break;
      localRounds++;
    }
    return { greedyRounds, localRounds };
  }

  /**
   * Takes the best change whose exact schedule fits and pays, then every later one that still
   * fits and touches no VM whose row the taken ones changed. False when none is taken.
   */
  #takeSome(changes: Change[]): boolean {
    const stamp = ++this.#stamp;
    let taken = 0;
    for (const c of changes) {
      if (c.vms.some((v) => this.#touched[v] === stamp) || !room(this, c.vms, c.to)) continue;
      if (!this.#take(c)) continue;
      taken++;
      for (const v of c.vms) {
        this.#touched[v] = stamp;
        for (const w of this.p.adjacency[v].peers) this.#touched[w] = stamp;
      }
    }
    return taken > 0;
  }

  /**
   * When no change pays on its own (often: maxMoves is spent), sends one moved VM home and
   * spends its move better. For the EXCHANGES moved VMs that lose least by going home: the
   * changes maxMoves held back that touch neither the VM nor its peers (their price stands),
   * and the changes led by its peers, priced anew; the first that pays together with it.
   */
  #exchange(blocked: Change[]): boolean {
    const { p, at } = this;
    const H = p.hosts.length;
    const back: { x: number; gain: number }[] = [];
    for (let x = 0; x < p.vms.length; x++) {
      const home = p.home[x];
      if (at[x] === home || this.occupancy[home] >= p.slots[home] || p.pinned[x]) continue;
      back.push({ x, gain: this.rowCost[x * H + at[x]] - this.rowCost[x * H + home] });
    }
    back.sort((a, b) => b.gain - a.gain || a.x - b.x);
    for (const { x, gain } of back.slice(0, EXCHANGES)) {
      const near = new Set([x, ...p.adjacency[x].peers]);
      const away = at[x];
      this.#move(x, p.home[x]);
      const local = bestChanges(this, { greedy: false, keep: TRIES, only: near }).top;
      const apart = blocked.filter((c) => c.vms.every((v) => !near.has(v)));
      const order = byRank(this.options.rank);
      for (const c of [...local, ...apart].sort(order).slice(0, TRIES)) {
        if (c.vms.includes(x) || !room(this, c.vms, c.to)) continue;
        if (this.#take(c, { more: gain, sent: x })) return true;
      }
      this.#move(x, away);
    }
    return false;
  }

  /**
   * Applies `c` if it leaves no edge newly across an unpriced pair, its exact schedule fits
   * maxMoves and it gains more than the moves it adds cost. For an exchange, `sent` is the VM
   * sent home since `moves` was counted and `more` the gain of that.
   */
  #take(c: Change, exchange: { more: number; sent: number } = { more: 0, sent: -1 }): boolean {
    const from = c.vms.map((v) => this.at[v]);
    c.vms.forEach((v, i) => this.#move(v, c.to[i]));
    // Edges that touch no moved VM are as they were: admissible.
    const H = this.p.hosts.length;
    const clean = (v: number) => v < 0 || this.rowBad[v * H + this.at[v]] === 0;
    const m = c.vms.every(clean) && clean(exchange.sent)
      ? schedule(this.p, this.at, { byGain: false })?.length ?? Infinity
      : Infinity;
    const net = c.gain + exchange.more - this.options.moveCost * (m - this.moves);
    if (m <= this.options.maxMoves && net > this.options.epsilon) {
      this.moves = m;
      return true;
    }
    for (let i = c.vms.length - 1; i >= 0; i--) this.#move(c.vms[i], from[i]);
    return false;
  }

  /** Puts VM v on host `to` in the final placement and updates its neighbours' rows. */
  #move(v: number, to: number): void {
    const p = this.p;
    const H = p.hosts.length;
    const from = this.at[v];
    const wasHome = from === p.home[v];
    const isHome = to === p.home[v];
    const { peers, bytesPerSec } = p.adjacency[v];
    for (let i = 0; i < peers.length; i++) {
      const w = peers[i];
      const t = bytesPerSec[i];
      for (let h = 0; h < H; h++) {
        const wHome = h === p.home[w];
        this.rowCost[w * H + h] += edgeCost(p, t, h, to) - edgeCost(p, t, h, from);
        this.rowBad[w * H + h] += edgeBad(p, h, to, wHome && isHome) -
          edgeBad(p, h, from, wHome && wasHome);
      }
    }
    this.occupancy[from]--;
    this.occupancy[to]++;
    this.members[from].delete(v);
    this.members[to].add(v);
    this.at[v] = to;
    this.displaced += (isHome ? 0 : 1) - (wasHome ? 0 : 1);
  }
}
