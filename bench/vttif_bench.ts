/**
 * VTTIF and VNET reaction times on the lab (root): VMs on four hosts run a ring, then switch to
 * all-to-all; the reaction time is from the switch (new traffic generators started) to the
 * change event declared by the proxy (its `detectedAt`). Measured for the default parameters
 * and for a fast setting, in the same run; the lower bound printed beside each is the
 * hysteresis itself, which no setting can beat. Target with the fast setting: under 2 s.
 * The VNET reaction is from that event to six fast paths up and their rules active on every
 * host (the adaptation loop's own measurement). Target: under 1 s.
 *
 *     usage: deno run --allow-all bench/vttif_bench.ts [--runs 3]
 *
 * @module
 */

import { FAST_VTTIF, Lab } from "../testbed/lab.ts";
import { numberFlag, requireLab } from "./cli.ts";
import { allPeers, Phase, ringPeers, waitTopology } from "../testbed/phases.ts";

interface Setting {
  name: string;
  args: string[];
  hysteresisMs: number;
}

const SETTINGS: Setting[] = [
  { name: "default (update 1 s, smoothing 5 s, hysteresis 3 s)", args: [], hysteresisMs: 3000 },
  {
    name: "fast (update 250 ms, smoothing 500 ms, hysteresis 500 ms)",
    args: [...FAST_VTTIF],
    hysteresisMs: 500,
  },
];

async function measure(
  setting: Setting,
  runs: number,
): Promise<{ vttif: number[]; vnet: number[] }> {
  const lab = await Lab.create({
    hosts: 4,
    lan: false,
    proxyArgs: setting.args,
    hostArgs: setting.args,
  });
  const times: number[] = [];
  const vnet: number[] = [];
  try {
    await lab.startAll();
    for (let r = 0; r < runs; r++) {
      const ring = await Phase.start(lab, `ring${r}`, ringPeers);
      await waitTopology(lab, (t) => t.classification.kind === "ring", 60_000);
      await ring.stop();
      const all = await Phase.start(lab, `all${r}`, allPeers);
      const t = await waitTopology(lab, (t) => t.classification.kind === "all-to-all", 60_000);
      const event = t.events.findLast((e: { to: string }) => e.to === "all-to-all");
      if (event) {
        times.push(event.detectedAt - all.startedAt);
        // VNET: from that change event to fast paths up and rules active on every host.
        const until = Date.now() + 30_000;
        while (Date.now() < until) {
          const adapt = await lab.agentJson("adapt");
          const r = adapt.reactions.find((x: { detectedAt: number }) =>
            x.detectedAt === event.detectedAt
          );
          if (r) {
            vnet.push(r.ms);
            break;
          }
          await new Promise((res) => setTimeout(res, 200));
        }
      }
      await all.stop();
      // Let the overlay go quiet so the next ring starts from silence.
      await waitTopology(lab, (t) => t.classification.kind === "none", 60_000);
    }
  } finally {
    await lab.close();
  }
  return { vttif: times, vnet };
}

if (import.meta.main) {
  requireLab("vttif");
  const runs = numberFlag("--runs", 3);
  const rows: string[] = [];
  const med = (xs: number[]) => (xs.length ? xs[Math.floor(xs.length / 2)] / 1000 : NaN);
  const max = (xs: number[]) => (xs.length ? xs[xs.length - 1] / 1000 : NaN);
  for (const s of SETTINGS) {
    const m = await measure(s, runs);
    const t = m.vttif.sort((a, b) => a - b);
    const v = m.vnet.sort((a, b) => a - b);
    rows.push(
      `| ${s.name} | ${med(t).toFixed(2)} | ${max(t).toFixed(2)} | ${
        (s.hysteresisMs / 1000).toFixed(2)
      } | ` +
        `${med(v).toFixed(2)} | ${max(v).toFixed(2)} | ${t.length} |`,
    );
  }
  console.log(
    "| setting | VTTIF reaction median s | max s | hysteresis (floor) s | VNET reaction median s | max s | runs |",
  );
  console.log("|---|---:|---:|---:|---:|---:|---:|");
  for (const r of rows) console.log(r);
  console.log(
    "\ntargets: VTTIF with the fast setting under 2 s; VNET (change event -> rules active) under 1 s",
  );
}
