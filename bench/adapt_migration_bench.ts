/**
 * Migration as adaptation, in one run: an application whose VMs sit badly across slow links
 * (testbed/placement_lab.ts, two Patterns pairs split across 100 Mbit/s uplinks), measured
 * with the star only, with fast paths only, and after the proxy moved VMs through its hook
 * (placement + fast paths); the moves made with their predicted and measured gains; then the
 * planner's gap to the optimum on small instances (exhaustive search, as bench:placement).
 * The star run is the baseline of the same lab. Then, where QEMU runs, the same with real
 * guests (testbed/qemu/guest_placement.ts): guest 1 fetches guest 2's blob across a 50 Mbit/s
 * uplink, the proxy's hook live-migrates guest 2 next to it, and the fetches run again; the
 * fetches apart are that part's baseline. Without root, only the planner part runs.
 *
 *     usage: deno task bench:adapt-migration [--iterations N] [--small N] [--seed N]
 *
 * @module
 */

import { type Lab, labUnavailable } from "../testbed/lab.ts";
import { measurePlacement, placementLab, SPLIT_PAIRS } from "../testbed/placement_lab.ts";
import type { PlacementResult, PlacementSites } from "../testbed/placement_lab.ts";
import { qemuUnavailable } from "../testbed/qemu/guest_image.ts";
import {
  GUEST_PAIR,
  type GuestPlacementResult,
  measureGuestPlacement,
} from "../testbed/qemu/guest_placement.ts";
import { small } from "./placement_bench.ts";
import { median } from "../testbed/scale_probe.ts";

function arg(name: string, fallback: string): string {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : fallback;
}

const s3 = (x: number | null) => (x === null ? "-" : Number(x.toPrecision(3)).toString());

function printRuns(r: PlacementResult): void {
  console.log("| mode | application runtime, s | x star | fast paths up |");
  console.log("|---|---:|---:|---:|");
  const row = (mode: string, ms: number, links: number | string) =>
    console.log(
      `| ${mode} | ${(ms / 1000).toFixed(2)} | ${(r.starMs / ms).toFixed(2)} | ${links} |`,
    );
  row("star only", r.starMs, 0);
  row("fast paths only", r.fastPathsMs, r.links);
  row("placement + fast paths", r.placedMs, "as needed");
  console.log(`\nVMs afterwards on: ${r.placement.join(", ")} (lab VMs in order)\n`);
  console.log(
    "| move | VM | from -> to | predicted gain | cost before -> after (measured) | " +
      "hook + arrival, ms | outcome |",
  );
  console.log("|---:|---|---|---:|---:|---:|---|");
  r.moves.forEach((m, i) => {
    const arrival = m.arrivedAt === null ? "-" : String(m.arrivedAt - m.startedAt);
    console.log(
      `| ${i + 1} | ${m.vm} | ${m.from} -> ${m.to} | ${s3(m.predictedGain)} | ` +
        `${s3(m.costBefore)} -> ${s3(m.costAfter)} (gain ${s3(m.measuredGain)}) | ` +
        `${arrival} | ${m.outcome}: ${m.why} |`,
    );
  });
}

function printGuests(r: GuestPlacementResult): void {
  const apart = median(r.apartMs);
  console.log(`| QEMU guests | fetch of ${GUEST_PAIR.blobKiB} KiB, ms (median) | x apart |`);
  console.log("|---|---:|---:|");
  console.log(`| apart, across the slow link | ${apart} | 1.00 |`);
  const placed = median(r.placedMs);
  console.log(`| after the hook's move | ${placed} | ${(apart / placed).toFixed(1)} |`);
  for (const m of r.moves) {
    const hookMs = m.hookDoneAt === null ? "-" : String(m.hookDoneAt - m.startedAt);
    console.log(
      `\nmove: ${m.vm} ${m.from} -> ${m.to}, ${m.outcome} (cost ${s3(m.costBefore)} -> ` +
        `${s3(m.costAfter)}); hook ${hookMs} ms: ${m.hook?.output}`,
    );
  }
  console.log();
}

/** Runs `measure` in a placement lab of `sites`, printing the logs if it fails. */
async function inLab<T>(sites: PlacementSites, measure: (lab: Lab) => Promise<T>): Promise<T> {
  const lab = await placementLab(sites);
  try {
    return await measure(lab);
  } catch (e) {
    console.error(await lab.logs());
    throw e;
  } finally {
    await lab.close();
  }
}

if (import.meta.main) {
  const iterations = Number(arg("--iterations", String(SPLIT_PAIRS.run.iterations)));
  const scenario = { ...SPLIT_PAIRS, run: { ...SPLIT_PAIRS.run, iterations } };
  console.log(`scenario: ${scenario.description}; ${iterations} iterations\n`);
  const why = labUnavailable();
  if (why) console.log(`lab part skipped: ${why}\n`);
  else {
    printRuns(
      await inLab(scenario, (lab) => measurePlacement(lab, scenario, (m) => console.error(m))),
    );
    const noQemu = qemuUnavailable();
    console.log(`\nscenario: ${GUEST_PAIR.description}\n`);
    if (noQemu) console.log(`QEMU part skipped: ${noQemu}\n`);
    else {
      printGuests(
        await inLab(GUEST_PAIR, (lab) => measureGuestPlacement(lab, GUEST_PAIR, console.error)),
      );
    }
  }
  small(Number(arg("--small", "200")), Number(arg("--seed", "42")));
}
