/**
 * What moving a VM edge onto a host pair costs, as the placement search reads it: seconds per
 * byte of the pair's bandwidth, plus the latency term of one round trip. A table over every
 * pair of hosts is what the search wants on a small overlay (typed arrays, no lookups), and
 * what a large one cannot afford: 10,000 hosts are 50 million pairs, 1.7 GB of tables built
 * for one /metrics line that reads the pairs a few thousand edges cross. So for a search over
 * up to {@linkcode DENSE_MAX_HOSTS} hosts the table is filled at once (and every estimate
 * checked there); beyond, and for a cost alone, each pair is priced the first time it is
 * asked, and kept.
 *
 * Pure: the estimates come from `lookup`, a pair's price never changes within one plan.
 *
 * @module
 */

import { type HostPair, hostPair } from "./planner.ts";
import type { PathEstimate } from "./placement.ts";

/** Hosts up to which every pair is priced up front. */
export const DENSE_MAX_HOSTS = 256;

/** How pairs are priced: an estimate per pair, an assumed one for the rest, the latency weight. */
export interface PriceSource {
  lookup(pair: HostPair): PathEstimate | null | undefined;
  /** Taken for pairs with no estimate; null: such pairs are unpriced. */
  unknownPath: PathEstimate | null;
  latencyWeight: number;
  /** Throws on an estimate the planner cannot use (names the pair). */
  check(e: PathEstimate, what: string): void;
}

/** The prices of the pairs of `hosts` (indices into it). */
export class PairPrices {
  readonly #hosts: readonly string[];
  readonly #source: PriceSource;
  readonly #H: number;
  /** Per pair h*H+g: seconds per byte and latency term; NaN: not priced (yet, when lazy). */
  readonly #dense: { spb: Float64Array; lat: Float64Array } | null;
  readonly #lazy = new Map<number, [number, number] | null>();

  /** @param lazy price only what is asked, whatever the size (one cost of a placement) */
  constructor(hosts: readonly string[], source: PriceSource, lazy = false) {
    this.#hosts = hosts;
    this.#source = source;
    this.#H = hosts.length;
    this.#dense = null;
    if (lazy || this.#H > DENSE_MAX_HOSTS) return;
    const spb = new Float64Array(this.#H * this.#H).fill(NaN);
    const lat = new Float64Array(this.#H * this.#H).fill(NaN);
    for (let h = 0; h < this.#H; h++) {
      for (let g = h + 1; g < this.#H; g++) {
        const price = this.#price(h, g);
        if (price === null) continue;
        for (const k of [h * this.#H + g, g * this.#H + h]) [spb[k], lat[k]] = price;
      }
    }
    this.#dense = { spb, lat };
  }

  /** Whether the pair (h, g), h != g, has an estimate or an assumed one. */
  isPriced(h: number, g: number): boolean {
    const d = this.#dense;
    return d ? !Number.isNaN(d.spb[h * this.#H + g]) : this.#get(h, g) !== null;
  }

  /** What an edge of `bytesPerSec` costs across (h, g): 0 on one host or an unpriced pair. */
  cost(bytesPerSec: number, h: number, g: number): number {
    if (h === g) return 0;
    const d = this.#dense;
    if (d) {
      // The search's inner loop: typed arrays, no allocation.
      const k = h * this.#H + g;
      const spb = d.spb[k];
      return Number.isNaN(spb) ? 0 : bytesPerSec * spb + d.lat[k];
    }
    const p = this.#get(h, g);
    return p === null ? 0 : bytesPerSec * p[0] + p[1];
  }

  /** A pair's price when lazy. */
  #get(h: number, g: number): readonly [number, number] | null {
    const key = Math.min(h, g) * this.#H + Math.max(h, g);
    let p = this.#lazy.get(key);
    if (p === undefined) this.#lazy.set(key, p = this.#price(Math.min(h, g), Math.max(h, g)));
    return p;
  }

  #price(h: number, g: number): [number, number] | null {
    const s = this.#source;
    const pair = hostPair(this.#hosts[h], this.#hosts[g]);
    const known = s.lookup(pair) ?? null;
    if (known !== null) s.check(known, `the underlay estimate of ${pair}`);
    const e = known ?? s.unknownPath;
    return e === null ? null : [1 / e.bandwidthBytesPerSec, s.latencyWeight * e.rttMs / 1000];
  }
}
