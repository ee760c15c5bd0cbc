/**
 * The underlay book's windowed extreme: the smallest round trip or the largest throughput of
 * the last one to two windows, kept without a sample list. Windows are aligned on multiples
 * of `windowMs`; the extreme of the newest window with a sample and of the one before it, if
 * that one had samples, is the value.
 *
 * No clock: `now` (ms) comes in with every call.
 *
 * @module
 */

/** Which extreme a {@linkcode WindowExtreme} keeps. */
export interface WindowExtremeOptions {
  windowMs: number;
  keep: "min" | "max";
}

/**
 * A min or a max over the last one to two windows.
 *
 * @example
 * ```ts
 * import { WindowExtreme } from "./underlay_window.ts";
 * const w = new WindowExtreme(8, 0, { windowMs: 1000, keep: "min" });
 * w.push(12, 1500);
 * if (w.value(1500) !== 8) throw new Error("one window back still counts");
 * w.push(10, 2100);
 * if (w.value(2100) !== 10) throw new Error("two windows back is forgotten");
 * ```
 */
export class WindowExtreme {
  /** The newest window with a sample (its number), its extreme, and the window before's. */
  #bucket: number;
  #current: number;
  #previous: number | null = null;
  readonly #windowMs: number;
  readonly #min: boolean;

  /** Starts with sample `x` taken at `now`. */
  constructor(x: number, now: number, options: WindowExtremeOptions) {
    this.#windowMs = options.windowMs;
    this.#min = options.keep === "min";
    this.#bucket = Math.floor(now / this.#windowMs);
    this.#current = x;
  }

  /** Adds `x`, sampled at `now` (never before the newest sample). */
  push(x: number, now: number): void {
    const bucket = Math.floor(now / this.#windowMs);
    if (bucket === this.#bucket) {
      if (this.#min ? x < this.#current : x > this.#current) this.#current = x;
      return;
    }
    this.#previous = bucket === this.#bucket + 1 ? this.#current : null;
    this.#current = x;
    this.#bucket = bucket;
  }

  /**
   * The extreme of the samples of the window holding `now` and the one before (the last one
   * to two windows); when none is that recent, of the newest window that had samples.
   */
  value(now: number): number {
    const bucket = Math.floor(now / this.#windowMs);
    if (bucket !== this.#bucket || this.#previous === null) return this.#current;
    return this.#min
      ? Math.min(this.#current, this.#previous)
      : Math.max(this.#current, this.#previous);
  }
}
