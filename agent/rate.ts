/**
 * Rates as people read them, the same everywhere the agent prints one (the CLI's tables, the
 * planner's reasons, the DOT topology); the live page's JavaScript repeats it.
 *
 * @module
 */

/**
 * A rate in bytes per second with three significant digits at most: `0 B/s`, `950 B/s`,
 * `12.3 kB/s`, `1.50 MB/s`, `24.0 MB/s`, `2.10 GB/s`.
 *
 * @example
 * ```ts
 * import { formatRate } from "./rate.ts";
 * const shown = [0, 950, 12_345, 1.5e6, 24e6, 2.1e9].map(formatRate).join(", ");
 * if (shown !== "0 B/s, 950 B/s, 12.3 kB/s, 1.50 MB/s, 24.0 MB/s, 2.10 GB/s") throw new Error(shown);
 * ```
 */
export function formatRate(bytesPerSec: number): string {
  if (!Number.isFinite(bytesPerSec) || bytesPerSec <= 0) return "0 B/s";
  const units = ["B/s", "kB/s", "MB/s", "GB/s", "TB/s"];
  let v = bytesPerSec;
  let i = 0;
  while (v >= 999.5 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  if (i === 0) return `${Math.round(v)} B/s`;
  return `${v.toPrecision(3)} ${units[i]}`;
}
