/**
 * How steadily each VM pair talks: an exponentially weighted average of "was this pair active
 * in this tick?" (1 or 0), per undirected pair.
 *
 * The smoothed matrix alone cannot tell a short burst from a new pattern: a one-second burst of
 * a few megabytes keeps a pair above the threshold for several time constants. A new edge is
 * therefore admitted into the topology only when its pair has also been active in most recent
 * ticks ({@linkcode ADMIT_ACTIVITY}); edges already in the topology stay while their smoothed
 * weight holds. A phase change of the application passes (its pairs talk every tick), a burst
 * does not.
 *
 * @module
 */

import { pairKey, pairOf, type RateSample } from "./traffic_matrix.ts";

/** Activity a new edge needs to be admitted (a one-tick burst reaches 1 - e^(-dt/τ)). */
export const ADMIT_ACTIVITY = 0.4;

/** The undirected key of a directed pair key (smaller id first). */
export function undirectedKey(key: number): number {
  const [s, d] = pairOf(key);
  return s < d ? key : pairKey(d, s);
}

/**
 * Per-pair activity.
 *
 * @example
 * ```ts
 * import { ActivityTracker } from "./activity.ts";
 * const a = new ActivityTracker({ timeConstantMs: 3000 });
 * a.update(new Map([[7, 1e6]]), 1000, 1e5);
 * if (a.activity(7) > 0.3) throw new Error("one tick is not steady");
 * ```
 */
export class ActivityTracker {
  readonly #tau: number;
  readonly #score = new Map<number, number>();

  constructor(options: { timeConstantMs: number }) {
    this.#tau = Math.max(1, options.timeConstantMs);
  }

  /**
   * Folds in one tick: a pair is active when its raw rate (both directions) reaches
   * `activeBytesPerSec`.
   */
  update(sample: RateSample, dtMs: number, activeBytesPerSec: number): void {
    if (!(dtMs > 0)) return;
    const alpha = 1 - Math.exp(-dtMs / this.#tau);
    const raw = new Map<number, number>();
    for (const [k, r] of sample) {
      const u = undirectedKey(k);
      raw.set(u, (raw.get(u) ?? 0) + r);
    }
    for (const [k, v] of this.#score) {
      const active = (raw.get(k) ?? 0) >= activeBytesPerSec ? 1 : 0;
      const next = v + alpha * (active - v);
      if (next < 0.01) this.#score.delete(k);
      else this.#score.set(k, next);
    }
    for (const [k, r] of raw) {
      if (!this.#score.has(k) && r >= activeBytesPerSec) this.#score.set(k, alpha);
    }
  }

  /** Forgets every pair `drop` selects (VMs evicted from the matrix). */
  forget(drop: (key: number) => boolean): void {
    for (const k of this.#score.keys()) if (drop(k)) this.#score.delete(k);
  }

  /** The activity of an undirected pair key, in [0, 1]. */
  activity(undirected: number): number {
    return this.#score.get(undirected) ?? 0;
  }
}
