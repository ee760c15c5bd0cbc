/**
 * Admission first: the proxy's reachability checks of newly joined hosts (a TLS dial back to
 * each one's fast-path listener) wait while hosts are still queueing to join, and run a few at
 * a time. In a storm every join is followed by such a check, a third TLS handshake on the
 * proxy's one thread; checking later costs the new host nothing (no fast path is planned before
 * its check), while admitting the next host sooner shortens the storm. The checks that waited
 * must not then start all at once: ten thousand dials together time out (2 s each) and would
 * mark reachable hosts unreachable.
 *
 *     check ──queue empty (or waited MAX_DEFER_MS)?──> a slot of CONCURRENCY free? ──> run
 *
 * @module
 */

import type { Clock } from "../agent/clock.ts";

/** How often a waiting check looks again. */
export const RECHECK_BUSY_MS = 200;

/** A check waits at most this long for the queue to empty, then runs anyway. */
export const MAX_DEFER_MS = 60_000;

/** Checks in flight at once. */
export const CONCURRENCY = 16;

/** Runs checks after admissions, at most {@linkcode CONCURRENCY} at a time. */
export class AdmissionFirst {
  readonly #busy: () => boolean;
  readonly #clock: Clock;
  readonly #concurrency: number;
  #running = 0;
  readonly #slots: (() => void)[] = [];

  /** @param busy whether hosts are queueing to join now */
  constructor(busy: () => boolean, clock: Clock, concurrency = CONCURRENCY) {
    this.#busy = busy;
    this.#clock = clock;
    this.#concurrency = concurrency;
  }

  /** Checks running now. */
  get running(): number {
    return this.#running;
  }

  /** Checks waiting for a slot now. */
  get waiting(): number {
    return this.#slots.length;
  }

  /**
   * `check` once nobody queues to join (looked at every {@linkcode RECHECK_BUSY_MS}, at most
   * `maxDeferMs`) and a slot is free.
   *
   * @example
   * ```ts
   * import { AdmissionFirst } from "./admission_first.ts";
   * import { ManualClock } from "../agent/manual_clock.ts";
   * const clock = new ManualClock();
   * let busy = true, ran = false;
   * const done = new AdmissionFirst(() => busy, clock).run(async () => { ran = true; });
   * await clock.advance(1_000);
   * if (ran) throw new Error("ran while hosts were queueing");
   * busy = false;
   * await clock.advance(200);
   * await done;
   * if (!ran) throw new Error("did not run once the queue emptied");
   * ```
   */
  async run<T>(check: () => Promise<T>, maxDeferMs = MAX_DEFER_MS): Promise<T> {
    const until = this.#clock.monotonic() + maxDeferMs;
    while (this.#busy() && this.#clock.monotonic() < until) {
      await this.#clock.sleep(RECHECK_BUSY_MS);
    }
    if (this.#running >= this.#concurrency) {
      await new Promise<void>((resolve) => this.#slots.push(resolve));
    }
    this.#running++;
    try {
      return await check();
    } finally {
      this.#running--;
      this.#slots.shift()?.();
    }
  }
}
