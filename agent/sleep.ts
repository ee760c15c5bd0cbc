/**
 * Waiting that a stop cuts short: every loop of the agent sleeps through this, so that an
 * abort ends it at once instead of after the current interval.
 *
 * @module
 */

/**
 * Sleeps `ms`, or until `signal` aborts (then it resolves at once).
 *
 * @example
 * ```ts
 * import { sleep } from "./sleep.ts";
 * const stop = new AbortController();
 * const t0 = Date.now();
 * const slept = sleep(60_000, stop.signal);
 * stop.abort();
 * await slept;
 * if (Date.now() - t0 > 1000) throw new Error("the abort did not end the sleep");
 * ```
 */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
