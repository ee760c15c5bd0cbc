/**
 * What a SIGHUP can change without a restart. The daemon re-reads its configuration (the same
 * flags and file) and compares it with the one it runs with: settings in {@linkcode LIVE} are
 * applied in place, every other changed setting is named as needing a restart, so nothing
 * changes silently and nothing is silently ignored.
 *
 * @module
 */

import { keyOf, type SettingName, SETTINGS } from "./schema.ts";
import type { Config } from "./schema.ts";

/** Settings a running agent takes on at a reload. */
export const LIVE: ReadonlySet<SettingName> = new Set<SettingName>([
  "logLevel",
  "logFormat",
  "adapt",
  "fastPaths",
  "pin",
  "forbid",
]);

/** The settings that differ between `running` and `next`, split by whether they apply live. */
export function configDiff(
  running: Config,
  next: Config,
): { live: SettingName[]; restart: SettingName[] } {
  const live: SettingName[] = [];
  const restart: SettingName[] = [];
  for (const name of Object.keys(SETTINGS) as SettingName[]) {
    if (JSON.stringify(running[name]) === JSON.stringify(next[name])) continue;
    (LIVE.has(name) ? live : restart).push(name);
  }
  return { live, restart };
}

/** `--a, --b` for log lines. */
export function flagList(names: SettingName[]): string {
  return names.map((n) => `--${keyOf(n)}`).join(", ");
}
