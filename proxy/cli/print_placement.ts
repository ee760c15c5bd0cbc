/**
 * The readable forms of `agent underlay` and `agent advise` (the API's UnderlayReply and
 * PlacementReply, proxy/api_types.ts), as print.ts does for the other replies.
 *
 * @module
 */

import { formatRate } from "../../agent/rate.ts";
import type { PlacementReply, UnderlayReply } from "../api_types.ts";
import { type Print, table } from "./print.ts";

function ms(x: number | null | undefined): string {
  return typeof x === "number" ? x.toFixed(2) : "-";
}

function rate(x: number | null | undefined): string {
  return typeof x === "number" ? formatRate(x) : "-";
}

function age(x: number | null | undefined): string {
  return typeof x === "number" ? `${(x / 1000).toFixed(0)} s` : "-";
}

function num(x: number | null | undefined): string {
  return typeof x === "number" ? Number(x.toPrecision(3)).toString() : "-";
}

/** `agent underlay`: what was measured, what the planner takes, what nothing measured. */
export function printUnderlay(u: UnderlayReply, out: Print): void {
  out(
    `star links together: ${rate(u.proxy?.bytesPerSec)} now, ${
      rate(u.proxy?.bestBytesPerSec)
    } at most`,
  );
  const pairs = u.pairs ?? [];
  if (pairs.length === 0) out("nothing measured yet");
  else {
    out(table(
      ["pair", "kind", "rtt ms", "rtt min ms", "bandwidth", "throughput", "age", "source"],
      pairs.map((p) => [
        p.pair,
        p.kind,
        ms(p.rttMs),
        ms(p.rttMinMs),
        rate(p.bandwidthBytesPerSec),
        rate(p.throughputBytesPerSec),
        age(p.bandwidthAgeMs ?? p.ageMs),
        p.source,
      ]),
    ));
  }
  const planned = u.planned ?? [];
  if (planned.length) {
    out(
      u.partial
        ? "\nas placement prices the host pairs measured or carrying VM traffic (too many hosts " +
          "to list every pair):"
        : "\nas placement prices host pairs:",
    );
    out(table(
      ["host pair", "bandwidth", "from", "rtt ms", "rtt from", "bottleneck"],
      planned.map((p) => [
        p.pair,
        rate(p.bandwidthBytesPerSec),
        p.via,
        ms(p.rttMs),
        p.rttVia ?? "-",
        p.bottleneck,
      ]),
    ));
  }
  if ((u.unmeasured ?? []).length) {
    out(`no traffic of their own lately (priced as their star path): ${u.unmeasured.join(" ")}`);
  }
  printProbes(u.probes, out);
}

/** The active RTT probes in one or two lines (absent in a reply from an older proxy). */
function printProbes(p: UnderlayReply["probes"] | undefined, out: Print): void {
  if (!p) return;
  const refused = Object.entries(p.refused ?? {}).filter(([, n]) => n > 0)
    .map(([why, n]) => `${n} ${why}`);
  out(
    `\nRTT probes (pairs without a fast path): ${p.sent} sent, ${p.answered} answered, ` +
      `${p.failed} failed, ${p.unanswered} unanswered, ${p.outstanding} waiting` +
      (refused.length ? `; answers refused: ${refused.join(", ")}` : ""),
  );
  if (p.lastFailure) out(`last failed probe: ${p.lastFailure}`);
}

/** `agent advise`: the plan and its reasons, the capacities, the migrations carried out. */
export function printAdvice(p: PlacementReply, out: Print): void {
  const s = p.settings;
  const m = p.migration;
  out(
    `placement: at most ${s.maxMoves} moves, min gain ${Math.round(100 * s.minGain)}%, ` +
      `move cost ${s.moveCost}; migration ${m?.enabled ? "on" : "off"} ` +
      `(hook: ${m?.hook ?? "none: advice only"})`,
  );
  out(table(
    ["host", "slots", "from", "VMs"],
    (p.hosts ?? []).map((h) => [h.host, h.slots, h.source, h.vms]),
  ));
  if ((p.pinned ?? []).length) out(`pinned: ${p.pinned.join(" ")}`);
  const plan = p.plan;
  out(
    `\nplan: ${plan.reason} (cost ${num(plan.predictedCost.before)} -> ${
      num(plan.predictedCost.after)
    })`,
  );
  if (plan.moves.length) {
    out(table(
      ["#", "vm", "from", "to", "gain", "why"],
      plan.moves.map((x, i) => [i + 1, x.vm, x.from, x.to, num(x.gain), x.reason]),
    ));
  }
  if (m?.current) {
    out(`\nmoving now: ${m.current.vm} ${m.current.from} -> ${m.current.to} (${m.current.phase})`);
  }
  const done = (m?.history ?? []).filter((x) => x.outcome !== null);
  if (done.length) {
    out("\nmigrations:");
    out(table(
      ["started", "vm", "from", "to", "outcome", "predicted", "measured", "why"],
      done.map((x) => [
        new Date(x.startedAt).toISOString().slice(11, 19),
        x.vm,
        x.from,
        x.to,
        x.outcome ?? "-",
        num(x.predictedGain),
        num(x.measuredGain),
        x.why,
      ]),
    ));
  }
  const resting = m?.resting ?? [];
  if (resting.length) {
    out(
      `resting: ${
        resting.map((r) => `${r.vm} until ${new Date(r.until).toISOString()}`).join(", ")
      }`,
    );
  }
}
