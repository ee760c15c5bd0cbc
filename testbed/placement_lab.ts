/**
 * Migration as adaptation on the namespace lab: heavily communicating VMs placed badly across
 * a slow path, an application measured with the star only, with fast paths only, and after
 * the proxy moved the VMs through its migration hook (testbed/placement_hook.ts). Shared by
 * tests/lab/placement_test.ts and bench/adapt_migration_bench.ts.
 *
 *     sites  h1, h2 (and the proxy) | h3, h4, whose uplinks are shaped like a MAN link
 *     VMs    one per host; application 1 on the VMs of h1 and h3, application 2 on h2 and h4
 *            (Patterns all-to-all between the two), both across the slow links
 *     slots  h1 and h2 hold 2 VMs (--vm-slots), h3 and h4 one: the proxy may bring each
 *            remote VM next to its peer, never the other way
 *
 *     star -> fast paths (warmed up, links up) -> migrate on while the applications run
 *       -> every planned move made and kept -> migrate off -> placement + fast paths
 *
 * @module
 */

import { FAST_VTTIF, Lab } from "./lab.ts";
import { type PatternsRun, runPatterns } from "./patterns_run.ts";
import type { MoveRecord } from "../proxy/migrator.ts";
import type { PlacementReply } from "../proxy/api_types.ts";

const HOOK = new URL("./placement_hook.ts", import.meta.url).pathname;

/** Where a placement scenario runs: the hosts, what each can hold, the slow links. */
export interface PlacementSites {
  description: string;
  hosts: number;
  /** `--vm-slots` of h1, h2, ... */
  slots: number[];
  /** Shaping in Mbit/s of underlay egress: namespace -> rate. */
  shape(lab: Lab): [string, number][];
  /** Namespace VMs per host (default 1); QEMU guests come on top. */
  vmsPerHost?: number;
}

/** A placement scenario of namespace VMs: the sites and the applications on them. */
export interface PlacementScenario extends PlacementSites {
  /** Each application: the lab VMs (indices) it runs on, at the same time as the others. */
  apps: number[][];
  run: PatternsRun;
}

/** Two sites joined by 100 Mbit/s; two VM pairs, each split across them. */
export const SPLIT_PAIRS: PlacementScenario = {
  description: "two sites (h1, h2 with the proxy | h3, h4 behind 100 Mbit/s uplinks); " +
    "two Patterns pairs (h1-h3, h2-h4), all-to-all, 1 MiB messages",
  hosts: 4,
  slots: [2, 2, 1, 1],
  shape: (lab) => [[lab.hostNs(3), 100], [lab.hostNs(4), 100]],
  apps: [[0, 2], [1, 3]],
  run: { topology: "all-to-all", messageBytes: 1 << 20, computeMs: 5, iterations: 40 },
};

/** What one run of the scenario measured. */
export interface PlacementResult {
  starMs: number;
  fastPathsMs: number;
  /** Fast paths up during the fast-paths run. */
  links: number;
  placedMs: number;
  /** The migrations the proxy made, as it recorded them. */
  moves: MoveRecord[];
  /** Where the VMs are afterwards: lab VM index -> host name. */
  placement: string[];
}

/** A lab for `s`: the proxy with the hook (migration off), hosts with their slots, shaped. */
export async function placementLab(s: PlacementSites): Promise<Lab> {
  const lab = await Lab.create({ hosts: s.hosts, vmsPerHost: s.vmsPerHost ?? 1, lan: false });
  try {
    await lab.startProxy([
      ...FAST_VTTIF,
      "--no-adapt",
      "--migrate-hook",
      `${Deno.execPath()} run -A ${HOOK} ${lab.prefix}`,
      "--migrate-settle",
      "3s",
    ]);
    for (let i = 1; i <= s.hosts; i++) {
      await lab.startHost(i, [...FAST_VTTIF, "--vm-slots", String(s.slots[i - 1])]);
    }
    for (const [ns, rate] of s.shape(lab)) await lab.shape(ns, rate);
  } catch (e) {
    await lab.close();
    throw e;
  }
  return lab;
}

let port = 7950;

/** Runs the scenario's applications at once; the slowest one's runtime, ms. */
export async function runApps(lab: Lab, s: PlacementScenario, iterations?: number) {
  const runs = s.apps.map((vms) =>
    runPatterns(lab, { ...s.run, iterations: iterations ?? s.run.iterations, vms, port: port++ })
  );
  return Math.max(...(await Promise.all(runs)).map((o) => o.runtimeMs));
}

async function fastPathsUp(lab: Lab): Promise<number> {
  const links = await lab.agentJson("links");
  return links.fastPaths.filter((f: { phase: string }) => f.phase === "up").length;
}

/** Polls `probe` every 250 ms until it returns a value; throws naming `what` after `ms`. */
export async function poll<T>(
  what: string,
  ms: number,
  probe: () => Promise<T | null>,
): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== null) return v;
    if (Date.now() > until) throw new Error(`Cannot measure placement: no ${what} in ${ms} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * With `load` running (it stops when its signal aborts, or ends by itself), waits until the
 * proxy advises a move, turns migration on, and waits until the proxy has nothing left to
 * move; every move must have been kept. Returns the moves.
 */
export async function migrateWhileRunning(
  lab: Lab,
  load: (signal: AbortSignal) => Promise<unknown>,
): Promise<MoveRecord[]> {
  const stop = new AbortController();
  const driver = load(stop.signal);
  try {
    // Planned while idle, the proxy would not look again for its plan interval (10 s).
    await poll("advice to move", 60_000, async () => {
      const p: PlacementReply = await lab.agentJson("advise");
      return p.plan.moves.length > 0 ? p : null;
    });
    await lab.agentJson("adapt", "set", "migrate", "on");
    const moves = await poll("placement that settled", 120_000, async () => {
      const p: PlacementReply = await lab.agentJson("advise");
      const bad = p.migration.history.find((m) =>
        m.outcome === "failed" || m.outcome === "reverted"
      );
      if (bad) throw new Error(`Cannot place: ${bad.vm} ${bad.outcome}: ${bad.why}`);
      const done = p.migration.history.length > 0 && p.migration.current === null &&
        p.plan.moves.length === 0;
      return done ? p.migration.history : null;
    });
    await lab.agentJson("adapt", "set", "migrate", "off");
    return moves;
  } finally {
    stop.abort();
    await driver.catch(() => {});
  }
}

/** Star only, fast paths only, then placement + fast paths, in one lab. */
export async function measurePlacement(
  lab: Lab,
  s: PlacementScenario,
  progress: (msg: string) => void = () => {},
): Promise<PlacementResult> {
  progress("star only (adaptation off)...");
  await lab.agentJson("adapt", "set", "off");
  const starMs = await runApps(lab, s);
  progress(`  ${(starMs / 1000).toFixed(2)} s; fast paths only: warming up...`);
  await lab.agentJson("adapt", "set", "on");
  await runApps(lab, s, 10);
  const links = await poll("fast paths", 20_000, async () => {
    const up = await fastPathsUp(lab);
    return up >= s.apps.length ? up : null;
  });
  const fastPathsMs = await runApps(lab, s);
  progress(`  ${(fastPathsMs / 1000).toFixed(2)} s; migration on while the applications run...`);
  const moves = await migrateWhileRunning(lab, () => runApps(lab, s, 20 * s.run.iterations));
  progress(`  ${moves.length} moves; placement + fast paths...`);
  const placedMs = await runApps(lab, s);
  progress(`  ${(placedMs / 1000).toFixed(2)} s`);
  const vms: { mac: string; host: string }[] = await lab.agentJson("vms");
  const placement = lab.vms.map((v) => vms.find((x) => x.mac === v.mac)?.host ?? "?");
  return { starMs, fastPathsMs, links, placedMs, moves, placement };
}
