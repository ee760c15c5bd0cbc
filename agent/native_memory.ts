/**
 * Keeps the agent's native memory flat over weeks: fewer malloc arenas, and free memory given
 * back to the kernel every few seconds (see ffi/malloc.ts for why RSS creeps otherwise).
 *
 * @module
 */

import { limitMallocArenas, trimMalloc } from "../ffi/malloc.ts";

/** Arenas shared by all threads: the event loop and a few pool threads rarely contend. */
export const MALLOC_ARENAS = 2;

/** How often free memory is handed back. A trim takes well under a millisecond here. */
export const TRIM_INTERVAL_MS = 10_000;

/**
 * Limits the arenas and starts the periodic trim; returns the function that stops it.
 * Without glibc (or FFI) it does nothing.
 */
export function keepNativeMemoryLow(): () => void {
  try {
    limitMallocArenas(MALLOC_ARENAS);
    trimMalloc();
  } catch {
    return () => {};
  }
  const timer = setInterval(trimMalloc, TRIM_INTERVAL_MS);
  Deno.unrefTimer(timer);
  return () => clearInterval(timer);
}
