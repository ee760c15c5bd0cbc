/**
 * Keeps the agent's native memory flat over weeks: fewer malloc arenas, and free memory given
 * back to the kernel every few seconds (see ffi/malloc.ts for why RSS creeps otherwise).
 *
 * A trim walks every free chunk of every arena, so its cost grows with the heap: well under a
 * millisecond for a host, 280 ms for a proxy holding 10,000 hosts (600 MB RSS), where a trim
 * every 10 s was a third of its idle CPU. The next trim therefore waits long enough that
 * trimming stays under {@linkcode TRIM_SHARE} of the thread.
 *
 * @module
 */

import { limitMallocArenas, trimMalloc } from "../ffi/malloc.ts";

/** Arenas shared by all threads: the event loop and a few pool threads rarely contend. */
export const MALLOC_ARENAS = 2;

/** How often free memory is handed back, when a trim is cheap. */
export const TRIM_INTERVAL_MS = 10_000;

/** Largest share of the thread trims may take. */
export const TRIM_SHARE = 0.005;

/**
 * The wait before the next trim after one that took `tookMs`: the interval, or longer when
 * the trim was costly, so that trims take at most {@linkcode TRIM_SHARE} of the time.
 *
 * @example
 * ```ts
 * import { nextTrimMs } from "./native_memory.ts";
 * if (nextTrimMs(0.3) !== 10_000 || nextTrimMs(280) !== 56_000) throw new Error();
 * ```
 */
export function nextTrimMs(tookMs: number): number {
  return Math.max(TRIM_INTERVAL_MS, Math.round(tookMs / TRIM_SHARE));
}

/**
 * Limits the arenas and starts the periodic trim; returns the function that stops it.
 * Without glibc (or FFI) it does nothing.
 */
export function keepNativeMemoryLow(): () => void {
  const trimTimed = () => {
    const t0 = performance.now();
    trimMalloc();
    return performance.now() - t0;
  };
  let took: number;
  try {
    limitMallocArenas(MALLOC_ARENAS);
    took = trimTimed();
  } catch {
    return () => {};
  }
  let timer: ReturnType<typeof setTimeout>;
  const schedule = (ms: number) => {
    timer = setTimeout(() => schedule(nextTrimMs(trimTimed())), ms);
    Deno.unrefTimer(Number(timer));
  };
  schedule(nextTrimMs(took));
  return () => clearTimeout(timer);
}
