/**
 * Rates as people read them, the same everywhere the agent prints one (the CLI's tables, the
 * planner's reasons, the DOT topology, the benchmarks' Gbit/s columns); the live page's
 * JavaScript repeats the `auto` form.
 *
 * @module
 */

/** How {@linkcode formatRate} writes a rate; every field is optional. */
export interface RateFormat {
  /**
   * `auto` (the default): bytes per second in the unit that keeps three significant digits,
   * for people reading a table or a reason. `Gbit/s`: always gigabits per second with
   * {@linkcode RateFormat.decimals} decimals, as network benchmarks and link speeds are quoted,
   * so that a column of them lines up and compares at a glance.
   */
  unit?: "auto" | "Gbit/s";
  /** Decimals with a fixed unit; 2 by default. Ignored by `auto`. */
  decimals?: number;
  /** False leaves the unit out, for a column whose heading names it; true by default. */
  showUnit?: boolean;
}

const AUTO_UNITS = ["B/s", "kB/s", "MB/s", "GB/s", "TB/s"];

/**
 * A rate given in bytes per second, by default with three significant digits at most: `0 B/s`,
 * `950 B/s`, `12.3 kB/s`, `1.50 MB/s`, `24.0 MB/s`, `2.10 GB/s`. With `unit: "Gbit/s"` it is
 * written in gigabits per second with a fixed number of decimals.
 *
 * @example
 * ```ts
 * import { formatRate } from "./rate.ts";
 * const shown = [0, 950, 12_345, 1.5e6, 24e6, 2.1e9].map((r) => formatRate(r)).join(", ");
 * if (shown !== "0 B/s, 950 B/s, 12.3 kB/s, 1.50 MB/s, 24.0 MB/s, 2.10 GB/s") throw new Error(shown);
 * if (formatRate(1.25e8, { unit: "Gbit/s" }) !== "1.00 Gbit/s") throw new Error("Gbit/s");
 * if (formatRate(5e8, { unit: "Gbit/s", showUnit: false }) !== "4.00") throw new Error("column");
 * ```
 */
export function formatRate(bytesPerSec: number, format: RateFormat = {}): string {
  const showUnit = format.showUnit ?? true;
  if (format.unit === "Gbit/s") {
    const gbits = (bytesPerSec * 8 / 1e9).toFixed(format.decimals ?? 2);
    return showUnit ? `${gbits} Gbit/s` : gbits;
  }
  let text: string;
  let i = 0;
  if (!Number.isFinite(bytesPerSec) || bytesPerSec <= 0) {
    text = "0";
  } else {
    let v = bytesPerSec;
    while (v >= 999.5 && i < AUTO_UNITS.length - 1) {
      v /= 1000;
      i++;
    }
    text = i === 0 ? `${Math.round(v)}` : v.toPrecision(3);
  }
  return showUnit ? `${text} ${AUTO_UNITS[i]}` : text;
}
