/**
 * Paces the adaptation's re-planning for events that come in floods. A reconcile looks at
 * every host (its rules, the VM-to-host map, the plan), so it costs O(hosts): 3 ms at 10,000
 * hosts. Each joining host triggers two (its `listening`, its first `rules-applied`), so a
 * join storm spent more of the proxy's thread re-planning than admitting.
 *
 * The pacer keeps re-planning to a small share of the thread: after a run that took `d` ms,
 * the next waits until `SHARE_INVERSE * d` ms after it; requests meanwhile share one deferred
 * run. On a small overlay a run takes microseconds and the next may follow at once, so
 * reactions are as quick as an immediate call; at 10,000 hosts requests are merged into about
 * ten runs a second.
 *
 * @module
 */

import type { Clock, Timer } from "../agent/clock.ts";

/** Re-planning may take at most 1/SHARE_INVERSE of the thread when requests keep coming. */
export const SHARE_INVERSE = 30;

/** Gaps under this run at once (a timer would cost more than it saves). */
const MIN_GAP_MS = 1;

/** Runs `run` on request, at most once per gap proportional to its own cost. */
export class ReconcilePacer {
  readonly #run: () => void;
  readonly #clock: Clock;
  readonly #cpuMs: () => number;
  /** When the last run ended (clock time), and how long it took (ms of CPU). */
  #lastEnd = -Infinity;
  #lastCost = 0;
  #timer: Timer | null = null;
  /** Requests merged into a later run (for metrics and tests). */
  merged = 0;

  /** @param cpuMs a monotonic clock for the runs' cost (performance.now; tests fake it) */
  constructor(run: () => void, clock: Clock, cpuMs: () => number = () => performance.now()) {
    this.#run = run;
    this.#clock = clock;
    this.#cpuMs = cpuMs;
  }

  /** The earliest clock time the next run may start. */
  get nextAt(): number {
    const gap = SHARE_INVERSE * this.#lastCost;
    return gap < MIN_GAP_MS ? -Infinity : this.#lastEnd + gap;
  }

  /** Runs now, or once at {@linkcode nextAt} with every other request until then. */
  request(): void {
    if (this.#timer) {
      this.merged++;
      return;
    }
    const wait = this.nextAt - this.#clock.now();
    if (wait <= 0) return this.#runNow();
    this.merged++;
    this.#timer = this.#clock.after(wait, () => {
      this.#timer = null;
      this.#runNow();
    });
  }

  /** Drops a deferred run (the loop stopped). */
  cancel(): void {
    this.#timer?.cancel();
    this.#timer = null;
  }

  #runNow(): void {
    const start = this.#cpuMs();
    try {
      this.#run();
    } finally {
      this.#lastCost = this.#cpuMs() - start;
      this.#lastEnd = this.#clock.now();
    }
  }
}
