/**
 * VTTIF as one pure pipeline: reports -> global matrix -> low-pass smoothing -> normalise and
 * prune -> classify -> change detection. The proxy feeds it reports as they arrive and calls
 * {@linkcode Vttif.tick} every update interval with the current time; nothing here reads a
 * clock or does I/O.
 *
 * @module
 */

import { ActivityTracker, ADMIT_ACTIVITY } from "./activity.ts";
import { ChangeDetector, type TopologyChange } from "./change.ts";
import type { Classification } from "./classify.ts";
import { Smoother } from "./smoothing.ts";
import { buildTopology, type TopologyGraph } from "./topology.ts";
import { type PairCount, pairOf, TrafficMatrix, VmIndex } from "./traffic_matrix.ts";

/** VTTIF parameters (see the README for the defaults and what they trade). */
export interface VttifOptions {
  /** Time constant of the low-pass filter. */
  smoothingMs: number;
  /** Edges below this fraction of the heaviest are pruned. */
  threshold: number;
  /** VMs the matrix tracks at most (idle ones are evicted); default 2^20. */
  maxVms?: number;
  /** A new graph must persist this long to be declared. */
  hysteresisMs: number;
}

/** One directed entry of the smoothed matrix. */
export interface MatrixEntry {
  src: string;
  dst: string;
  bytesPerSec: number;
}

/** The result of a tick. */
export interface TickResult {
  graph: TopologyGraph;
  classification: Classification;
  change: TopologyChange | null;
  /** How long the tick's computation took is measured by the caller; entries it handled: */
  entries: number;
}

/**
 * The inference pipeline.
 *
 * @example
 * ```ts
 * import { Vttif } from "./vttif.ts";
 * const v = new Vttif({ smoothingMs: 1000, threshold: 0.1, hysteresisMs: 0 });
 * v.tick(0);
 * v.addReport([{ src: "02:00:00:00:00:01", dst: "02:00:00:00:00:02", bytes: 1e6, frames: 700 }]);
 * const r = v.tick(1000);
 * if (r.change?.to.kind !== "bus") throw new Error(r.classification.summary);
 * ```
 */
export class Vttif {
  readonly matrix: TrafficMatrix;
  #evicted = 0;
  readonly #smoother: Smoother;
  readonly #detector: ChangeDetector;
  readonly #threshold: number;
  readonly #activity: ActivityTracker;
  #lastTick: number | null = null;
  #ticks = 0;

  constructor(options: VttifOptions) {
    this.matrix = new TrafficMatrix(new VmIndex(options.maxVms));
    this.#smoother = new Smoother({ timeConstantMs: options.smoothingMs });
    this.#detector = new ChangeDetector({ hysteresisMs: options.hysteresisMs });
    this.#threshold = options.threshold;
    this.#activity = new ActivityTracker({ timeConstantMs: Math.max(options.hysteresisMs, 1) });
  }

  /** Ticks run so far. */
  get ticks(): number {
    return this.#ticks;
  }

  /** VMs evicted for being idle so far. */
  get evicted(): number {
    return this.#evicted;
  }

  /**
   * Frees the ids of VMs that no smoothed pair mentions any more (silent long enough to have
   * decayed away), so that a bounded index serves an overlay whose VMs come and go.
   */
  #evictIdle(): void {
    const live = new Set<number>();
    for (const k of this.#smoother.rates.keys()) {
      const [s, d] = pairOf(k);
      live.add(s);
      live.add(d);
    }
    if (live.size === this.matrix.vms.size) return;
    const gone = new Set<number>();
    this.#evicted += this.matrix.vms.retain((id) => live.has(id) || (gone.add(id), false));
    if (gone.size) {
      this.#activity.forget((k) => {
        const [s, d] = pairOf(k);
        return gone.has(s) || gone.has(d);
      });
    }
  }

  /** Adds a host's report (counts since its previous report). */
  addReport(pairs: readonly PairCount[]): void {
    this.matrix.add(pairs);
  }

  /** Runs one inference step at time `now` (ms). The first call only sets the clock. */
  tick(now: number): TickResult {
    const dtMs = this.#lastTick === null ? 0 : now - this.#lastTick;
    this.#lastTick = now;
    this.#ticks++;
    const sample = this.matrix.drain(dtMs / 1000);
    this.#smoother.update(sample, dtMs);
    this.#evictIdle();
    // "Active" means a pair carried at least the threshold's share of the current heaviest
    // edge in this very tick.
    const heaviest = this.#detector.current.graph.maxBytesPerSec;
    this.#activity.update(sample, dtMs, Math.max(1, this.#threshold * heaviest));
    const currentKeys = this.#detector.currentKeys;
    const vms = this.matrix.vms;
    const graph = buildTopology(this.#smoother.rates, vms, {
      threshold: this.#threshold,
      admit: (k) => {
        if (this.#activity.activity(k) >= ADMIT_ACTIVITY) return true;
        const [s, d] = pairOf(k);
        const [a, b] = [vms.macOf(s), vms.macOf(d)].sort();
        return currentKeys.has(`${a}-${b}`);
      },
    });
    const change = this.#detector.observe(graph, now);
    const current = this.#detector.current;
    return {
      graph: current.graph,
      classification: current.classification,
      change,
      entries: this.#smoother.rates.size,
    };
  }

  /** The current topology (the last declared one, with up-to-date weights). */
  current(): { graph: TopologyGraph; classification: Classification } {
    return this.#detector.current;
  }

  /** The smoothed matrix, heaviest first. */
  smoothedMatrix(): MatrixEntry[] {
    const out: MatrixEntry[] = [];
    for (const [k, r] of this.#smoother.rates) {
      const [s, d] = pairOf(k);
      out.push({ src: this.matrix.vms.macOf(s), dst: this.matrix.vms.macOf(d), bytesPerSec: r });
    }
    return out.sort((a, b) => b.bytesPerSec - a.bytesPerSec);
  }
}
