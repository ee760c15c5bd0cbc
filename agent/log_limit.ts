/**
 * Rate limits for log lines about what peers do: a flood of refused connections or spoofed
 * frames is counted in full, but logged at most once per key (a source, a claimant and MAC)
 * and period, so that an attacker cannot flood the log or the disk.
 *
 * @module
 */

/** Keys remembered before the memory is reset (bounded, whatever a flood sends). */
const MAX_KEYS = 10_000;

/**
 * Says whether something keyed `key` should be logged at `now`: once per key and period.
 *
 * @example
 * ```ts
 * import { LogLimit } from "./log_limit.ts";
 * const l = new LogLimit(10_000);
 * if (!l.shouldLog("m|h2", 0) || l.shouldLog("m|h2", 5000) || !l.shouldLog("m|h2", 10_000)) {
 *   throw new Error();
 * }
 * ```
 */
export class LogLimit {
  readonly #periodMs: number;
  readonly #last = new Map<string, number>();

  constructor(periodMs: number) {
    this.#periodMs = periodMs;
  }

  shouldLog(key: string, now: number): boolean {
    if (now - (this.#last.get(key) ?? -Infinity) < this.#periodMs) return false;
    if (this.#last.size > MAX_KEYS) this.#last.clear();
    this.#last.set(key, now);
    return true;
  }
}
