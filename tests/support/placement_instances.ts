/**
 * Seeded placement instances shared by the placement tests and benchmark: small random ones
 * that exhaustive search can solve, and large clustered ones for timing.
 *
 * @module
 */

import type { PathEstimate, PlacementInput, VmEdge } from "../../adapt/placement.ts";
import { hostPair } from "../../adapt/planner.ts";
import { vm } from "./topologies.ts";

function pick<T>(random: () => number, xs: readonly T[]): T {
  return xs[Math.floor(random() * xs.length)];
}

/** Uniform integer in [lo, hi]. */
function between(random: () => number, lo: number, hi: number): number {
  return lo + Math.floor(random() * (hi - lo + 1));
}

/** Places VMs 0..n-1 uniformly at random on hosts with a free slot. */
function scatter(random: () => number, n: number, slots: Map<string, number>): Map<string, string> {
  const free = new Map(slots);
  const vmHost = new Map<string, string>();
  for (let i = 0; i < n; i++) {
    const open = [...free].filter(([, k]) => k > 0).map(([h]) => h);
    const h = pick(random, open);
    free.set(h, free.get(h)! - 1);
    vmHost.set(vm(i), h);
  }
  return vmHost;
}

/**
 * A random instance of 2-8 VMs on 2-4 hosts: VMs in groups that talk heavily inside and a
 * little across, paths from 1 MB/s to 100 MB/s (some unknown), some VMs pinned, 1-4 moves.
 */
export function smallInstance(random: () => number): PlacementInput {
  const hosts = between(random, 2, 4);
  const n = between(random, 2, 8);
  const slots = new Map<string, number>();
  for (let h = 0; h < hosts; h++) slots.set(`h${h}`, between(random, 1, 4));
  let spare = [...slots.values()].reduce((a, b) => a + b, 0) - n;
  for (let h = 0; spare < 0; h = (h + 1) % hosts, spare++) {
    slots.set(`h${h}`, slots.get(`h${h}`)! + 1);
  }
  const vmHost = scatter(random, n, slots);
  const groups = between(random, 1, 3);
  const edges: VmEdge[] = [];
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const together = i % groups === j % groups;
      if (random() >= (together ? 0.7 : 0.2)) continue;
      const scale = together ? 1e7 : 5e5;
      edges.push({ a: vm(i), b: vm(j), bytesPerSec: scale * (0.2 + random()) });
    }
  }
  const underlay = new Map<string, PathEstimate>();
  const someUnknown = random() < 0.3;
  for (let h = 0; h < hosts; h++) {
    for (let g = h + 1; g < hosts; g++) {
      if (someUnknown && random() < 0.25) continue;
      underlay.set(hostPair(`h${h}`, `h${g}`), {
        bandwidthBytesPerSec: 10 ** (6 + 2 * random()),
        rttMs: 1 + 49 * random(),
      });
    }
  }
  const pinned = new Set([...vmHost.keys()].filter(() => random() < 0.15));
  return {
    edges,
    vmHost,
    slots,
    pinned,
    underlay,
    settings: {
      maxMoves: between(random, 1, 4),
      minGain: 0,
      moveCost: pick(random, [0, 0.05, 0.2]),
      latencyWeight: pick(random, [0, 0, 1]),
    },
  };
}

/**
 * `n` VMs (a multiple of 8) in applications of 8, each VM talking to 3 others of its
 * application at 1-10 MB/s and to one random VM at about 50 kB/s, scattered at random on n/8
 * hosts of 10 slots; hosts in racks of 8 (125 MB/s, 0.2 ms inside; 12.5 MB/s, 5 ms across).
 */
export function clusteredInstance(n: number, random: () => number): PlacementInput {
  const hosts = n / 8;
  const slots = new Map(Array.from({ length: hosts }, (_, h) => [`h${h}`, 10]));
  const vmHost = scatter(random, n, slots);
  const edges: VmEdge[] = [];
  for (let i = 0; i < n; i++) {
    const base = i - (i % 8);
    for (let k = 1; k <= 3; k++) {
      const j = base + ((i % 8) + k * 2 + 1) % 8;
      if (j > i) edges.push({ a: vm(i), b: vm(j), bytesPerSec: 1e6 * (1 + 9 * random()) });
    }
    const other = Math.floor(random() * n);
    if (other !== i) edges.push({ a: vm(i), b: vm(other), bytesPerSec: 5e4 * random() });
  }
  const underlay = new Map<string, PathEstimate>();
  for (let h = 0; h < hosts; h++) {
    for (let g = h + 1; g < hosts; g++) {
      const sameRack = Math.floor(h / 8) === Math.floor(g / 8);
      underlay.set(
        hostPair(`h${h}`, `h${g}`),
        sameRack ? { bandwidthBytesPerSec: 125e6, rttMs: 0.2 } : {
          bandwidthBytesPerSec: 12.5e6,
          rttMs: 5,
        },
      );
    }
  }
  return {
    edges,
    vmHost,
    slots,
    underlay,
    settings: { maxMoves: n / 4, minGain: 0.05, moveCost: 0.01 },
  };
}
