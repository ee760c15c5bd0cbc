/**
 * Many parties told when one signal aborts, each able to leave in O(1). A proxy runs ten
 * thousand links under one signal; with one `abort` listener each, every link that closed
 * took its listener off in time proportional to all the others (Deno's EventTarget keeps a
 * list), and 10,000 hosts leaving at once cost O(hosts²): seconds of the proxy's thread.
 *
 * @module
 */

/** The parties of each signal, behind the one listener the signal gets. */
const parties = new WeakMap<AbortSignal, Set<() => void>>();

/**
 * Calls `fn` once when `signal` aborts (at once if it has); returns the function that stops
 * that, in O(1).
 *
 * @example
 * ```ts
 * import { onAbort } from "./abort_set.ts";
 * const c = new AbortController();
 * let told = 0;
 * const leave = onAbort(c.signal, () => told++);
 * onAbort(c.signal, () => told++);
 * leave();
 * c.abort();
 * if (told !== 1) throw new Error(`${told}`);
 * ```
 */
export function onAbort(signal: AbortSignal, fn: () => void): () => void {
  if (signal.aborted) {
    fn();
    return () => {};
  }
  let set = parties.get(signal);
  if (!set) {
    const mine = set = new Set();
    parties.set(signal, mine);
    signal.addEventListener("abort", () => {
      parties.delete(signal);
      for (const f of mine) f();
    }, { once: true });
  }
  set.add(fn);
  return () => set.delete(fn);
}
