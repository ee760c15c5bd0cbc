/**
 * `deno task bench:nat [SCENARIO ...]` (root): fast paths across NATs, firewalls and IPv6, in
 * one run. Per scenario of testbed/nat_scenarios.ts (two hosts, one VM each, the proxy's
 * uplink shaped to 500 Mbit/s so that the star is the bottleneck):
 *
 *     Patterns on the star (adaptation off) -> adaptation on, a short warm-up run of Patterns
 *     -> the pair settles: direct (who dialed, or a hole punch) or the star, and why
 *     -> Patterns again on whatever path the overlay chose -> speedup over the star
 *
 * "wanted -> up" is the loop's own measure (the plan first wanting the link -> both ends up);
 * "traffic -> direct" counts from the warm-up's start on a quiet overlay (the star run's
 * traffic forgotten first), so it includes VTTIF's learning.
 * Prints the README table and writes it to bench/out/nat.md.
 *
 * @module
 */

import { requireLab } from "./cli.ts";
import {
  keepTalking,
  NAT_SCENARIOS,
  natLab,
  type NatScenario,
  pairOutcome,
} from "../testbed/nat_scenarios.ts";
import { natUnavailable } from "../testbed/nat.ts";
import { type PatternsRun, runPatterns } from "../testbed/patterns_run.ts";
import type { Lab } from "../testbed/lab.ts";
import { waitTopology } from "../testbed/phases.ts";

/** The application: two ranks exchanging 1 MiB per iteration. */
const RUN: PatternsRun = {
  topology: "all-to-all",
  messageBytes: 1 << 20,
  computeMs: 5,
  iterations: 100,
};
/** The proxy's uplink, Mbit/s: the star's bottleneck. */
const STAR_MBIT = 500;

/** One scenario's figures. */
export interface NatResult {
  scenario: NatScenario;
  path: "direct" | "star";
  how: string;
  upAfterMs: number | null;
  trafficToDirectMs: number | null;
  starMs: number;
  adaptiveMs: number;
  reason: string;
}

let port = 7930;

/** Measures scenario `s` on a fresh lab. */
export async function measureScenario(
  s: NatScenario,
  say: (m: string) => void,
): Promise<NatResult> {
  const lab = await natLab(s, { adapt: false });
  try {
    await lab.shape(lab.proxyNs, STAR_MBIT);
    say("  Patterns on the star...");
    const star = await runPatterns(lab, { ...RUN, port: port++ });
    // A cold start: the star run's traffic forgotten before adaptation may act.
    await waitTopology(lab, (t) => t.classification.kind === "none", 60_000, "a quiet overlay");
    await lab.agentJson("adapt", "set", "on");
    const startedAt = Date.now();
    say("  adaptation on, warm-up run...");
    // Pings keep the pair wanted after the short run, for as long as its outcome takes.
    const stop = keepTalking(lab);
    let out;
    try {
      await runPatterns(lab, { ...RUN, iterations: 10, port: port++ });
      out = await pairOutcome(lab, 60_000);
    } finally {
      await stop();
    }
    const upAt = out.path === "direct" ? await linkUpAt(lab) : null;
    say(`  ${out.path} (${out.how}); Patterns again...`);
    const adaptive = await runPatterns(lab, { ...RUN, port: port++ });
    return {
      scenario: s,
      path: out.path,
      how: out.how,
      upAfterMs: out.upAfterMs,
      trafficToDirectMs: upAt === null ? null : upAt - startedAt,
      starMs: star.runtimeMs,
      adaptiveMs: adaptive.runtimeMs,
      reason: out.reason,
    };
  } finally {
    await lab.close();
  }
}

/** When the link h1|h2 last came up (the proxy's event). */
async function linkUpAt(lab: Lab): Promise<number | null> {
  const events = await lab.agentJson("events") as {
    type: string;
    pair?: string;
    phase?: string;
    at: number;
  }[];
  const up = events.filter((e) => e.type === "link" && e.pair === "h1|h2" && e.phase === "up");
  return up.at(-1)?.at ?? null;
}

/** The README table. */
export function natTable(results: NatResult[]): string {
  const how = (r: NatResult) =>
    r.how === "punch"
      ? "hole punch"
      : r.how === "star"
      ? "-"
      : `${r.how.replace(" dials", "")} dialed`;
  const lines = [
    "| scenario | h1 | h2 | direct | how | wanted -> up ms | traffic -> direct s | Patterns star s | Patterns adaptive s | speedup over star |",
    "|---|---|---|---|---|---:|---:|---:|---:|---:|",
  ];
  for (const r of results) {
    const [e1, e2] = r.scenario.edges;
    const family = r.scenario.ipv6 === "only"
      ? " (IPv6)"
      : r.scenario.ipv6 === "dual"
      ? " (v4/v6)"
      : "";
    lines.push(
      `| ${r.scenario.name} | ${e1}${family} | ${e2}${family} | ${
        r.path === "direct" ? "yes" : "no"
      } | ${how(r)} | ${r.upAfterMs ?? "-"} | ${
        r.trafficToDirectMs === null ? "-" : (r.trafficToDirectMs / 1000).toFixed(2)
      } | ${(r.starMs / 1000).toFixed(2)} | ${(r.adaptiveMs / 1000).toFixed(2)} | ${
        (r.starMs / r.adaptiveMs).toFixed(2)
      }x |`,
    );
  }
  const stars = results.filter((r) => r.path === "star");
  for (const r of stars) lines.push("", `${r.scenario.name}: ${r.reason}`);
  return lines.join("\n");
}

if (import.meta.main) {
  requireLab("nat");
  const noNft = natUnavailable();
  if (noNft) {
    console.error(`bench:nat: ${noNft}`);
    Deno.exit(1);
  }
  const pick = Deno.args;
  const unknown = pick.filter((n) => !NAT_SCENARIOS.some((s) => s.name === n));
  if (unknown.length) {
    console.error(
      `bench:nat: unknown scenario ${unknown.map((n) => `"${n}"`).join(", ")}; choose from ${
        NAT_SCENARIOS.map((s) => `"${s.name}"`).join(", ")
      }`,
    );
    Deno.exit(2);
  }
  const results: NatResult[] = [];
  for (const s of NAT_SCENARIOS.filter((s) => pick.length === 0 || pick.includes(s.name))) {
    console.error(`\n# ${s.name}`);
    results.push(await measureScenario(s, (m) => console.error(m)));
  }
  const table = natTable(results);
  const head = `Patterns ${RUN.topology}, 2 ranks, ${RUN.messageBytes} B messages, ` +
    `${RUN.iterations} iterations; the proxy's uplink shaped to ${STAR_MBIT} Mbit/s; ` +
    `${new Date().toISOString().slice(0, 10)}`;
  console.log(`${head}\n\n${table}`);
  await Deno.mkdir(new URL("./out/", import.meta.url), { recursive: true });
  await Deno.writeTextFile(new URL("./out/nat.md", import.meta.url), `${head}\n\n${table}\n`);
}
