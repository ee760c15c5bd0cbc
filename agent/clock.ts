/**
 * Time, as everything that waits or reads the time sees it. The agent runs on
 * {@linkcode systemClock}; tests hand a {@linkcode ManualClock} (manual_clock.ts) to a whole
 * overlay and move time by hand, so a test of a 5 s smoothing window or a 10 s keepalive takes
 * milliseconds and never depends on how busy the machine is.
 *
 * Two readings, because they answer different questions: {@linkcode Clock.now} is wall time
 * (timestamps an operator reads, certificate and token expiry), {@linkcode Clock.monotonic}
 * never jumps (round-trip times, "nothing received for N ms").
 *
 * @module
 */

/** A scheduled callback; `cancel` is idempotent. */
export interface Timer {
  cancel(): void;
}

/** The source of time and timers. */
export interface Clock {
  /** Wall time, ms since the epoch. */
  now(): number;
  /** Monotonic ms from an arbitrary origin; only differences mean anything. */
  monotonic(): number;
  /** Calls `fn` once after `ms`. */
  after(ms: number, fn: () => void): Timer;
  /** Calls `fn` every `ms` until cancelled. */
  every(ms: number, fn: () => void): Timer;
  /** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/**
 * The real clock: `Date.now`, `performance.now` and the event loop's timers.
 *
 * @example
 * ```ts
 * import { systemClock } from "./clock.ts";
 * const stop = new AbortController();
 * const t0 = systemClock.monotonic();
 * const slept = systemClock.sleep(60_000, stop.signal);
 * stop.abort();
 * await slept;
 * if (systemClock.monotonic() - t0 > 1000) throw new Error("the abort did not end the sleep");
 * ```
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  after(ms, fn) {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
  every(ms, fn) {
    const t = setInterval(fn, ms);
    return { cancel: () => clearInterval(t) };
  },
  sleep(ms, signal) {
    return sleepOn(this, ms, signal);
  },
};

/**
 * A sleep on `clock`'s timers that an abort ends at once; shared by every clock so that the
 * abort rule is written once.
 */
export function sleepOn(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = clock.after(ms, done);
    function done() {
      timer.cancel();
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
