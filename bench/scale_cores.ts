/**
 * `bench:scale`'s pure cores at the sizes it runs: one VTTIF tick over a torus of N VMs
 * (beside folding the same report into a Map, the floor of any implementation) and the
 * adaptation planner over a ring of N VMs on N hosts.
 *
 * @module
 */

import { formatMac } from "../agent/switch/ethernet.ts";
import { plan } from "../adapt/planner.ts";
import type { PairCount } from "../inference/traffic_matrix.ts";
import { Vttif } from "../inference/vttif.ts";
import { scaleVmMac } from "../testbed/scale_fleet.ts";
import { median } from "../testbed/scale_probe.ts";

const mac = (i: number) => formatMac(scaleVmMac(i));

/**
 * Median time (ms) of the planner over a ring of `n` VMs, `vmsPerHost` per host, every host
 * able to take a fast path (budget 0: every pair is decided, none linked).
 */
export function plannerMs(n: number, vmsPerHost: number): number {
  const edges = Array.from({ length: n }, (_, i) => {
    const [a, b] = [mac(i), mac((i + 1) % n)].sort();
    return { a, b, bytesPerSec: 1000, weight: 1 };
  }).sort((x, y) => (x.a < y.a ? -1 : x.a > y.a ? 1 : x.b < y.b ? -1 : 1));
  const graph = {
    vms: [...new Set(edges.flatMap((x) => [x.a, x.b]))].sort(),
    edges,
    maxBytesPerSec: 1000,
  };
  const vmHost = new Map(
    Array.from({ length: n }, (_, i) => [mac(i), `s${Math.floor(i / vmsPerHost)}`]),
  );
  const eligible = new Set(vmHost.values());
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    plan({
      graph,
      vmHost,
      eligible,
      current: new Set(),
      settings: { enabled: true, budget: 0, pins: [], forbids: [], keepMargin: 0.5 },
    });
    times.push(performance.now() - t0);
  }
  return median(times);
}

/** Median VTTIF tick (ms) over a 2D torus of about `n` VMs, every pair reporting. */
export function vttifTickMs(
  n: number,
): { vms: number; pairs: number; ms: number; baselineMs: number } {
  const side = Math.round(Math.sqrt(n));
  const id = (r: number, c: number) => ((r + side) % side) * side + ((c + side) % side);
  const report: PairCount[] = [];
  for (let r = 0; r < side; r++) {
    for (let c = 0; c < side; c++) {
      for (const to of [id(r, c + 1), id(r + 1, c), id(r, c - 1), id(r - 1, c)]) {
        report.push({ src: mac(id(r, c)), dst: mac(to), bytes: 1e6, frames: 700 });
      }
    }
  }
  const v = new Vttif({
    smoothingMs: 5000,
    threshold: 0.1,
    hysteresisMs: 3000,
    maxVms: Math.max(65_536, 2 * side * side),
  });
  v.tick(0);
  const ticks = side * side > 10_000 ? 6 : 20;
  const times: number[] = [];
  const base: number[] = [];
  for (let i = 1; i <= ticks; i++) {
    const b0 = performance.now();
    const m = new Map<string, number>();
    for (const p of report) m.set(p.src + p.dst, (m.get(p.src + p.dst) ?? 0) + p.bytes);
    base.push(performance.now() - b0);
    const t0 = performance.now();
    v.addReport(report);
    v.tick(i * 1000);
    times.push(performance.now() - t0);
  }
  // The first ticks build the index and declare the topology; the steady state is what repeats.
  const steady = times.slice(Math.min(3, times.length - 1));
  return { vms: side * side, pairs: report.length, ms: median(steady), baselineMs: median(base) };
}
