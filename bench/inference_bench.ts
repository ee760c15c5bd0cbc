/**
 * Cost of one VTTIF update on a large overlay: 1024 VMs talking as a 32x32 torus (each VM
 * with 4 neighbours, 8192 directed pairs) plus random background chatter, one report per
 * tick. Printed beside a baseline from the same run: merely adding the same report into a
 * Map, the floor for any implementation. Target: one update within 50 ms on this machine.
 *
 *     usage: deno run bench/inference_bench.ts [--vms 1024] [--ticks 30]
 *
 * @module
 */

import { Vttif } from "../inference/vttif.ts";
import { mesh, prng, reportFor } from "../tests/support/topologies.ts";

const TARGET_MS = 50;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

if (import.meta.main) {
  const arg = (name: string, d: number) => {
    const i = Deno.args.indexOf(name);
    return i >= 0 ? Number(Deno.args[i + 1]) : d;
  };
  const side = Math.round(Math.sqrt(arg("--vms", 1024)));
  const n = side * side;
  const ticks = arg("--ticks", 30);
  const pattern = mesh(side, side, true);
  const random = prng(42);
  const reports = Array.from(
    { length: ticks },
    () => reportFor(pattern, { vms: n, seconds: 1, bytesPerSec: 1e6, chatter: n, random }),
  );

  // Baseline: fold each report into a Map keyed by pair, nothing else.
  const baseline: number[] = [];
  for (const r of reports) {
    const t0 = performance.now();
    const m = new Map<string, number>();
    for (const p of r) m.set(p.src + p.dst, (m.get(p.src + p.dst) ?? 0) + p.bytes);
    baseline.push(performance.now() - t0);
  }

  const v = new Vttif({ smoothingMs: 5000, threshold: 0.1, hysteresisMs: 3000 });
  v.tick(0);
  const update: number[] = [];
  let declaredAt = -1;
  let kind = "none";
  for (let i = 0; i < ticks; i++) {
    const t0 = performance.now();
    v.addReport(reports[i]);
    const r = v.tick((i + 1) * 1000);
    update.push(performance.now() - t0);
    if (r.change) {
      declaredAt = i;
      kind = r.change.to.summary;
    }
  }
  const steady = update.filter((_, i) => i !== declaredAt);
  const m = median(steady);
  const b = median(baseline);
  console.log(
    `| measure (${n} VMs, ${reports[0].length} reported pairs per tick) | ms | x baseline |`,
  );
  console.log("|---|---:|---:|");
  console.log(`| baseline: add a report into a Map | ${b.toFixed(2)} | 1.0 |`);
  console.log(
    `| VTTIF update (report + smoothing + prune + change check), median | ${m.toFixed(2)} | ${
      (m / b).toFixed(1)
    } |`,
  );
  console.log(
    `| VTTIF update, worst | ${Math.max(...steady).toFixed(2)} | ${
      (Math.max(...steady) / b).toFixed(1)
    } |`,
  );
  if (declaredAt >= 0) {
    console.log(
      `| update that classified the new topology (${kind}) | ${update[declaredAt].toFixed(2)} | ${
        (update[declaredAt] / b).toFixed(1)
      } |`,
    );
  }
  console.log(
    `\ntarget: one update within ${TARGET_MS} ms: ${m <= TARGET_MS ? "met" : "NOT met"} (median ${
      m.toFixed(2)
    } ms)`,
  );
}
