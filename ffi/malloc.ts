/**
 * glibc malloc tuning for a long-running agent.
 *
 * Deno's native side (tokio's worker threads, rustls, V8's platform threads) allocates through
 * glibc malloc, which gives each thread that allocates an arena of its own, up to eight per
 * core, and keeps freed memory in them. A link made and unmade, a burst of TLS records, a
 * blocking task on a fresh pool thread: each leaves free but resident memory behind, so RSS
 * creeps up under churn even though nothing leaks.
 *
 * @module
 */

import { libc } from "./libc.ts";

/** mallopt parameter: the most arenas malloc creates (<malloc.h> M_ARENA_MAX). */
const M_ARENA_MAX = -8;

/**
 * Caps the number of malloc arenas: threads that have none yet share these. Call it at
 * start-up, before the process's threads allocate. Returns false if glibc refused.
 */
export function limitMallocArenas(count: number): boolean {
  if (!Number.isInteger(count) || count < 1) {
    throw new RangeError(`Cannot limit malloc arenas: count must be >= 1, got ${count}`);
  }
  return libc().mallopt(M_ARENA_MAX, count) === 1;
}

/**
 * Returns free memory at the top and in the middle of every arena to the kernel
 * (malloc_trim(0)); true when some was released. It walks the arenas under their locks:
 * call it now and then (seconds apart), not per frame.
 */
export function trimMalloc(): boolean {
  return libc().malloc_trim(0n) === 1;
}
