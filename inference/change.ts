/**
 * Change detection with hysteresis: the reported topology changes only when a different
 * pruned graph has been seen continuously for `hysteresisMs`. A brief burst, or an edge
 * hovering around the threshold for less than that, changes nothing; a real phase change is
 * reported once, with the times needed to measure the reaction.
 *
 * "Different" means a different edge set: weights drift all the time, membership is what an
 * application's communication pattern is.
 *
 * @module
 */

import { type Classification, classify } from "./classify.ts";
import { edgeKeys, EMPTY_GRAPH, type TopologyGraph } from "./topology.ts";

/** A persistent change of the application topology. */
export interface TopologyChange {
  from: Classification;
  to: Classification;
  /** Edges `a-b` that appeared / disappeared. */
  added: string[];
  removed: string[];
  /** When the new graph was first seen (ms). */
  firstSeenAt: number;
  /** When the change was declared (ms): firstSeenAt + at least the hysteresis. */
  detectedAt: number;
  /** The new graph. */
  graph: TopologyGraph;
}

function sameEdges(a: Set<string>, b: Set<string>): boolean {
  if (a.size !== b.size) return false;
  for (const k of a) if (!b.has(k)) return false;
  return true;
}

/**
 * Tracks the current topology and declares changes.
 *
 * @example
 * ```ts
 * import { ChangeDetector } from "./change.ts";
 * const d = new ChangeDetector({ hysteresisMs: 1000 });
 * const g = { vms: ["a", "b"], edges: [{ a: "a", b: "b", bytesPerSec: 1, weight: 1 }], maxBytesPerSec: 1 };
 * if (d.observe(g, 0) !== null) throw new Error("too early");
 * if (d.observe(g, 1000)?.to.kind !== "bus") throw new Error("persisted: change");
 * if (d.observe(g, 2000) !== null) throw new Error("reported once");
 * ```
 */
export class ChangeDetector {
  readonly #hysteresisMs: number;
  #current: TopologyGraph = EMPTY_GRAPH;
  #currentKeys = new Set<string>();
  #currentClass: Classification = classify(EMPTY_GRAPH);
  #pendingKeys: Set<string> | null = null;
  #pendingSince = 0;
  #changes = 0;

  constructor(options: { hysteresisMs: number }) {
    this.#hysteresisMs = options.hysteresisMs;
  }

  /** The topology currently reported (the last declared one). */
  get current(): { graph: TopologyGraph; classification: Classification } {
    return { graph: this.#current, classification: this.#currentClass };
  }

  /** Edge keys `a-b` of the current topology. */
  get currentKeys(): ReadonlySet<string> {
    return this.#currentKeys;
  }

  /** Changes declared so far. */
  get changes(): number {
    return this.#changes;
  }

  /** When the pending candidate was first seen, or null when there is none. */
  get pendingSince(): number | null {
    return this.#pendingKeys ? this.#pendingSince : null;
  }

  /**
   * Feeds this tick's pruned graph; returns the change when one is declared now. The current
   * graph's weights follow every tick even without a change.
   */
  observe(graph: TopologyGraph, now: number): TopologyChange | null {
    const keys = edgeKeys(graph);
    if (sameEdges(keys, this.#currentKeys)) {
      this.#pendingKeys = null;
      this.#current = graph;
      return null;
    }
    if (!this.#pendingKeys || !sameEdges(keys, this.#pendingKeys)) {
      this.#pendingKeys = keys;
      this.#pendingSince = now;
    }
    if (now - this.#pendingSince < this.#hysteresisMs) return null;
    const to = classify(graph);
    const change: TopologyChange = {
      from: this.#currentClass,
      to,
      added: [...keys].filter((k) => !this.#currentKeys.has(k)).sort(),
      removed: [...this.#currentKeys].filter((k) => !keys.has(k)).sort(),
      firstSeenAt: this.#pendingSince,
      detectedAt: now,
      graph,
    };
    this.#current = graph;
    this.#currentKeys = keys;
    this.#currentClass = to;
    this.#pendingKeys = null;
    this.#changes++;
    return change;
  }
}
