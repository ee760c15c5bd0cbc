/**
 * The hostile-peer suite's figures for the README: every attack of the trust issue against an
 * in-process overlay (testbed/hostile.ts) while two honest VMs exchange frames over a fast
 * path; per attack, what was tried and what its counter shows refused, and the honest frames
 * lost meanwhile (the baseline: the frames the honest VMs sent in the same run).
 *
 *     usage: deno task bench:hostile
 *
 * @module
 */

import { runHostileSuite } from "../testbed/hostile.ts";

if (import.meta.main) {
  const t0 = performance.now();
  const r = await runHostileSuite();
  console.log("| attack | tried | refused | counter |");
  console.log("|---|---:|---:|---|");
  for (const a of r.attacks) {
    console.log(`| ${a.attack} | ${a.tried} | ${a.refused} | \`${a.counter}\` |`);
  }
  const lost = r.honest.sent - r.honest.received;
  console.log(
    `\n${r.attacks.length} attacks, ${r.attacks.reduce((n, a) => n + a.tried, 0)} attempts, ` +
      `${r.attacks.reduce((n, a) => n + a.refused, 0)} refused; honest frames: ` +
      `${r.honest.received} of ${r.honest.sent} received (${lost} lost); ` +
      `${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
}
