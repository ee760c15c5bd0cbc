/**
 * What every benchmark's command line needs: refuse to start without the lab (with the
 * reason), and read a positive number flag with a clear error for a bad value.
 *
 * @module
 */

import { labUnavailable } from "../testbed/lab.ts";

/** Exits with the reason when namespace labs cannot run here (not root, no `ip`, ...). */
export function requireLab(bench: string): void {
  const why = labUnavailable();
  if (why) {
    console.error(`bench:${bench}: ${why}`);
    Deno.exit(1);
  }
}

/**
 * The positive number after `flag` in `args` (e.g. `--seconds 5`), or `fallback` when the
 * flag is absent; exits with an error naming the flag for a missing or bad value.
 */
export function numberFlag(flag: string, fallback: number, args = Deno.args): number {
  const i = args.indexOf(flag);
  if (i < 0) return fallback;
  const value = Number(args[i + 1]);
  if (!(value > 0)) {
    console.error(`${flag}: expected a positive number, got ${args[i + 1] ?? "nothing"}`);
    Deno.exit(2);
  }
  return value;
}
