/**
 * Synthetic application traffic for VTTIF tests and benchmarks: the VM pairs of well-known
 * BSP patterns, and a generator of host reports with noise and background chatter.
 *
 * @module
 */

import type { PairCount } from "../../inference/traffic_matrix.ts";

/** MAC of synthetic VM i (0-based). */
export function vm(i: number): string {
  return `02:00:00:00:${((i >> 8) & 0xff).toString(16).padStart(2, "0")}:${
    (i & 0xff).toString(16).padStart(2, "0")
  }`;
}

/** Undirected VM index pairs of a pattern. */
export type Pattern = [number, number][];

export function allToAll(n: number): Pattern {
  const out: Pattern = [];
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) out.push([i, j]);
  return out;
}

export function ring(n: number): Pattern {
  return Array.from({ length: n }, (_, i) => [i, (i + 1) % n] as [number, number]);
}

export function bus(n: number): Pattern {
  return Array.from({ length: n - 1 }, (_, i) => [i, i + 1] as [number, number]);
}

export function star(n: number): Pattern {
  return Array.from({ length: n - 1 }, (_, i) => [0, i + 1] as [number, number]);
}

/** A complete binary tree (heap numbering). */
export function binaryTree(n: number): Pattern {
  return Array.from({ length: n - 1 }, (_, i) => [Math.floor(i / 2), i + 1] as [number, number]);
}

export function mesh(rows: number, cols: number, wrap = false): Pattern {
  const out: Pattern = [];
  const id = (r: number, c: number) => r * cols + c;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      if (c + 1 < cols) out.push([id(r, c), id(r, c + 1)]);
      else if (wrap) out.push([id(r, c), id(r, 0)]);
      if (r + 1 < rows) out.push([id(r, c), id(r + 1, c)]);
      else if (wrap) out.push([id(r, c), id(0, c)]);
    }
  }
  return out;
}

/** A small deterministic PRNG (tests must be reproducible). */
export function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

/**
 * One report interval of traffic: every pattern pair exchanges about `bytesPerSec` each way
 * (±`noise`), and `chatter` random pairs exchange a little (below 5% of it).
 */
export function reportFor(
  pattern: Pattern,
  options: {
    vms: number;
    seconds: number;
    bytesPerSec: number;
    noise?: number;
    chatter?: number;
    random: () => number;
  },
): PairCount[] {
  const out: PairCount[] = [];
  const jitter = () => 1 + (options.noise ?? 0.3) * (2 * options.random() - 1);
  for (const [a, b] of pattern) {
    for (const [s, d] of [[a, b], [b, a]]) {
      const bytes = Math.round(options.bytesPerSec * options.seconds * jitter());
      out.push({ src: vm(s), dst: vm(d), bytes, frames: Math.ceil(bytes / 1500) });
    }
  }
  for (let i = 0; i < (options.chatter ?? 0); i++) {
    const s = Math.floor(options.random() * options.vms);
    const d = Math.floor(options.random() * options.vms);
    const bytes = Math.round(options.bytesPerSec * options.seconds * 0.04 * options.random());
    if (s !== d && bytes > 0) out.push({ src: vm(s), dst: vm(d), bytes, frames: 1 });
  }
  return out;
}
