/**
 * Runs Patterns (testbed/patterns.ts) in every VM of a lab at once and collects the result:
 * the application's runtime is the slowest rank's, as for any BSP program.
 *
 * @module
 */

import type { Lab } from "./lab.ts";

const PATTERNS = new URL("./patterns.ts", import.meta.url).pathname;

/** One Patterns run's parameters. */
export interface PatternsRun {
  topology: string;
  messageBytes: number;
  computeMs: number;
  iterations: number;
  /** TCP port the ranks use (change it between runs to avoid TIME_WAIT collisions). */
  port?: number;
  timeoutS?: number;
  /** The lab VMs (indices) that run it, rank i on the i-th; default every VM in order. */
  vms?: readonly number[];
}

/** What one rank printed. */
export interface RankResult {
  rank: number;
  totalMs: number;
  iterationMs: number[];
  bytesSent: number;
  bytesReceived: number;
}

/** The run's outcome. */
export interface PatternsOutcome {
  /** The slowest rank's total, ms. */
  runtimeMs: number;
  ranks: RankResult[];
}

/**
 * The slowest rank's iteration times averaged over groups of `size` iterations (the last group
 * may be shorter), ms: where a run spent its time, e.g. while VTTIF was still learning.
 *
 * @example
 * ```ts
 * import { iterationGroups } from "./patterns_run.ts";
 * const ranks = [
 *   { rank: 0, totalMs: 10, iterationMs: [4, 2, 2, 2], bytesSent: 0, bytesReceived: 0 },
 *   { rank: 1, totalMs: 6, iterationMs: [3, 1, 1, 1], bytesSent: 0, bytesReceived: 0 },
 * ];
 * const g = iterationGroups({ runtimeMs: 10, ranks }, 2);
 * if (g.join() !== "3,2") throw new Error(g.join());
 * ```
 */
export function iterationGroups(outcome: PatternsOutcome, size: number): number[] {
  const slowest = outcome.ranks.reduce((a, b) => (b.totalMs > a.totalMs ? b : a));
  const groups: number[] = [];
  for (let i = 0; i < slowest.iterationMs.length; i += size) {
    const g = slowest.iterationMs.slice(i, i + size);
    groups.push(g.reduce((n, x) => n + x, 0) / g.length);
  }
  return groups;
}

/** Runs Patterns on every VM of `lab`; throws with the ranks' errors when any fails. */
/** `deno` arguments that start rank `rank` of a Patterns run among `hosts` (comma-separated). */
export function patternsArgs(rank: number, hosts: string): string[] {
  return ["run", "--allow-net", PATTERNS, "--rank", String(rank), "--hosts", hosts];
}

export async function runPatterns(lab: Lab, run: PatternsRun): Promise<PatternsOutcome> {
  const vms = run.vms?.map((i) => lab.vms[i]) ?? lab.vms;
  const hosts = vms.map((v) => v.ip).join(",");
  const results = await Promise.all(vms.map((vm, rank) =>
    lab.exec(vm.ns, [
      Deno.execPath(),
      ...patternsArgs(rank, hosts),
      "--topology",
      run.topology,
      "--message-bytes",
      String(run.messageBytes),
      "--compute-ms",
      String(run.computeMs),
      "--iterations",
      String(run.iterations),
      "--port",
      String(run.port ?? 7900),
      "--timeout-s",
      String(run.timeoutS ?? 300),
    ])
  ));
  const failed = results.map((r, i) => [i, r] as const).filter(([, r]) => r.code !== 0);
  if (failed.length) {
    throw new Error(
      `Cannot run Patterns: rank(s) ${failed.map(([i]) => i).join(", ")} failed:\n` +
        failed.map(([i, r]) => `rank ${i}: ${r.stderr.trim().slice(-500)}`).join("\n"),
    );
  }
  const ranks = results.map((r) => JSON.parse(r.stdout.trim().split("\n").at(-1)!) as RankResult);
  return { runtimeMs: Math.max(...ranks.map((r) => r.totalMs)), ranks };
}
