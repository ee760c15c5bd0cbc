/**
 * Low-pass filter over the traffic matrix: an exponentially weighted moving average per pair
 * with time constant τ (the smoothing interval). With a tick of `dt`, each pair moves
 * `alpha = 1 - exp(-dt/τ)` of the way towards its new rate; a pair absent from a tick decays
 * towards zero. Uneven ticks are handled exactly, since alpha depends on the real `dt`.
 *
 * A step change reaches 63% of its new value after τ and 95% after 3τ; a burst shorter than
 * τ is flattened. Entries that decay below `floorBytesPerSec` are dropped, so the matrix only
 * holds pairs that talk.
 *
 * @module
 */

import type { RateSample } from "./traffic_matrix.ts";

/**
 * Sparse EWMA of rates.
 *
 * @example
 * ```ts
 * import { Smoother } from "./smoothing.ts";
 * const s = new Smoother({ timeConstantMs: 1000 });
 * s.update(new Map([[1, 1000]]), 1000);
 * const v = s.rates.get(1)!;
 * if (Math.abs(v - 1000 * (1 - Math.exp(-1))) > 1e-9) throw new Error(String(v));
 * ```
 */
export class Smoother {
  readonly #tau: number;
  readonly #floor: number;
  readonly #rates = new Map<number, number>();

  constructor(options: { timeConstantMs: number; floorBytesPerSec?: number }) {
    if (!(options.timeConstantMs > 0)) {
      throw new RangeError(
        `Cannot smooth: time constant must be > 0 ms, got ${options.timeConstantMs}`,
      );
    }
    this.#tau = options.timeConstantMs;
    this.#floor = options.floorBytesPerSec ?? 1;
  }

  /** The smoothed rates (bytes/s) by pair key; read-only for callers. */
  get rates(): ReadonlyMap<number, number> {
    return this.#rates;
  }

  /** Folds in one tick's rates, `dtMs` after the previous tick. */
  update(sample: RateSample, dtMs: number): void {
    if (!(dtMs > 0)) return;
    const alpha = 1 - Math.exp(-dtMs / this.#tau);
    for (const [k, v] of this.#rates) {
      const next = v + alpha * ((sample.get(k) ?? 0) - v);
      if (next < this.#floor && !sample.has(k)) this.#rates.delete(k);
      else this.#rates.set(k, next);
    }
    for (const [k, r] of sample) {
      if (!this.#rates.has(k)) this.#rates.set(k, alpha * r);
    }
  }

  /** Forgets every pair `drop` selects (e.g. a VM evicted from the matrix). */
  forget(drop: (key: number) => boolean): void {
    for (const k of this.#rates.keys()) if (drop(k)) this.#rates.delete(k);
  }
}
