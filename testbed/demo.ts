/**
 * `deno task demo` (root): the short version of the cluster experiment, on one machine.
 *
 * It builds a namespace lab (a proxy and four hosts with one VM each, the proxy's uplink
 * shaped so that the star is the bottleneck), runs Patterns all-to-all over the star alone,
 * then again with adaptation on from a cold start, and shows what happened: the topology VTTIF
 * inferred, the fast-path links the adaptation added and when, the path of every VM pair, and
 * the speedup over the star. Everything is cleaned up at the end, also after a failure.
 *
 * @module
 */

import { labUnavailable } from "./lab.ts";
import { measureAuto, measureStar, scenarioLab, SCENARIOS } from "./scenarios.ts";
import type { VnetEvent as OverlayEvent } from "../proxy/event_types.ts";

const t0 = performance.now();
const step = (msg: string) =>
  console.log(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${msg}`);

async function main(): Promise<number> {
  const why = labUnavailable();
  if (why) {
    console.error(`demo: ${why}; run it as root on Linux (sudo deno task demo)`);
    return 1;
  }
  const base = SCENARIOS.cluster;
  const scenario = { ...base, run: { ...base.run, iterations: 40 } };
  step(`building the lab: ${scenario.description}`);
  step(
    "starting the proxy and four hosts (each checks the proxy's CA against its token, joins over TLS)",
  );
  const lab = await scenarioLab(scenario);
  try {
    const agent = async (...args: string[]) =>
      (await lab.exec(lab.proxyNs, lab.proxyCli(args), false)).stdout.trimEnd();
    const run = scenario.run;
    step(
      `Patterns ${run.topology} on ${lab.vms.length} VMs: ${run.iterations} iterations of ` +
        `${run.computeMs} ms compute + ${run.messageBytes / 1024} KiB to every neighbour + barrier`,
    );
    step("run 1: the star only (every frame through the proxy)...");
    const star = await measureStar(lab, scenario);
    step(`    ${(star.runtimeMs / 1000).toFixed(2)} s`);

    step("run 2: adaptation on, from a cold start (no links, traffic history forgotten)...");
    const auto = await measureAuto(lab, scenario);
    step(`    ${(auto.runtimeMs / 1000).toFixed(2)} s`);

    step("what VTTIF inferred (agent topology):");
    console.log(indent((await agent("topology")).split("\n\n")[0]));
    step("what the adaptation did (events, seconds after the application started):");
    const events = JSON.parse(await agent("events", "--json")) as OverlayEvent[];
    for (const e of events.filter((e) => e.at >= auto.startedAt)) {
      const at = ((e.at - auto.startedAt) / 1000).toFixed(2).padStart(6);
      if (e.type === "topology") {
        console.log(`    ${at} s  topology: ${e.fromSummary} -> ${e.toSummary}`);
      }
      if (e.type === "link" && e.phase === "up") console.log(`    ${at} s  fast path ${e.pair} up`);
      if (e.type === "reaction" && e.kind !== "migration") {
        console.log(`    ${at} s  rules active on every host (${e.ms} ms after the change)`);
      }
    }
    step("paths of the VM pairs now (agent paths):");
    console.log(indent(await agent("paths")));
    const speedup = star.runtimeMs / auto.runtimeMs;
    step(
      `result: star ${(star.runtimeMs / 1000).toFixed(2)} s, adaptive ${
        (auto.runtimeMs / 1000).toFixed(2)
      } s: ` +
        `${speedup.toFixed(2)}x faster (VTTIF reacted in ${auto.vttifMs ?? "?"} ms, VNET in ${
          auto.vnetMs ?? "?"
        } ms)`,
    );
    step("done; cleaning up");
    return 0;
  } catch (e) {
    console.error(`demo failed: ${(e as Error).message}\n${await lab.logs()}`);
    return 1;
  } finally {
    await lab.close();
  }
}

function indent(text: string): string {
  return text.replace(/^/gm, "    ");
}

if (import.meta.main) Deno.exit(await main());
