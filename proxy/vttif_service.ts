/**
 * VTTIF inside the proxy: hosts' traffic reports (and the proxy's own LAN device counts) feed
 * the pure pipeline in `inference/`, which runs every update interval; each declared topology
 * change is logged at info level and kept in a bounded list of recent events.
 *
 *     host reports ─┐
 *     LAN counter ──┴─> Vttif.addReport ... tick(now) -> graph, class, change -> log, events
 *
 * @module
 */

import { type Clock, systemClock } from "../agent/clock.ts";
import type { TrafficReport } from "../agent/traffic/counter.ts";
import { TrafficCounter } from "../agent/traffic/counter.ts";
import { logger } from "../agent/log.ts";
import type { TopologyChange } from "../inference/change.ts";
import { type MatrixEntry, Vttif, type VttifOptions } from "../inference/vttif.ts";
import type { Classification } from "../inference/classify.ts";
import type { TopologyGraph } from "../inference/topology.ts";

/** Recent changes kept for the API. */
export const MAX_EVENTS = 100;

/** A change as the API and the event stream show it. */
export interface TopologyEvent {
  type: "topology-change";
  from: string;
  to: string;
  fromSummary: string;
  toSummary: string;
  added: string[];
  removed: string[];
  /** When the new graph was first seen / declared (ms since epoch). */
  firstSeenAt: number;
  detectedAt: number;
}

/** What `GET /api/topology` returns. */
export interface TopologySnapshot {
  updatedAt: number;
  ticks: number;
  classification: Classification;
  graph: TopologyGraph;
  matrix: MatrixEntry[];
  /** Broadcast/multicast bytes/s per source in the last interval (not part of the topology). */
  groupBytesPerSec: Record<string, number>;
  lastTickMs: number;
  parameters: VttifOptions & { updateIntervalMs: number };
  events: TopologyEvent[];
}

/** Runs VTTIF for the proxy. */
export class VttifService {
  readonly vttif: Vttif;
  /** Counts frames entering the overlay at the proxy's own device (the LAN). */
  readonly local: TrafficCounter;
  readonly events: TopologyEvent[] = [];
  readonly #options: VttifOptions & { updateIntervalMs: number };
  readonly #listeners = new Set<(e: TopologyEvent) => void>();
  #group = new Map<string, number>();
  #groupNext = new Map<string, number>();
  #updatedAt = 0;
  #lastTickMs = 0;
  #lastLocalDrain = 0;
  readonly #log = logger("vttif");

  constructor(options: VttifOptions & { updateIntervalMs: number; maxPairs: number }) {
    this.#options = {
      updateIntervalMs: options.updateIntervalMs,
      smoothingMs: options.smoothingMs,
      threshold: options.threshold,
      hysteresisMs: options.hysteresisMs,
      maxVms: options.maxVms,
    };
    this.vttif = new Vttif(this.#options);
    this.local = new TrafficCounter({ maxPairs: options.maxPairs });
  }

  /** Calls `fn` with every declared change; returns the unsubscribe function. */
  onChange(fn: (e: TopologyEvent) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Folds in one host's report. */
  accept(report: TrafficReport): void {
    this.vttif.addReport(
      report.pairs.map(([src, dst, bytes, frames]) => ({ src, dst, bytes, frames })),
    );
    const seconds = Math.max(report.intervalMs, 1) / 1000;
    for (const [src, bytes] of report.group) {
      this.#groupNext.set(src, (this.#groupNext.get(src) ?? 0) + bytes / seconds);
    }
  }

  /** One inference step at `now` (ms since epoch); returns the change if one was declared. */
  tick(now: number): TopologyChange | null {
    const t0 = performance.now();
    this.accept(this.local.report(this.#lastLocalDrain ? now - this.#lastLocalDrain : 0));
    this.#lastLocalDrain = now;
    const r = this.vttif.tick(now);
    [this.#group, this.#groupNext] = [this.#groupNext, new Map()];
    this.#updatedAt = now;
    this.#lastTickMs = performance.now() - t0;
    if (r.change) {
      const c = r.change;
      const event: TopologyEvent = {
        type: "topology-change",
        from: c.from.kind,
        to: c.to.kind,
        fromSummary: c.from.summary,
        toSummary: c.to.summary,
        added: c.added,
        removed: c.removed,
        firstSeenAt: c.firstSeenAt,
        detectedAt: c.detectedAt,
      };
      this.events.push(event);
      if (this.events.length > MAX_EVENTS) this.events.shift();
      this.#log.info(
        "Topology changed: {from} -> {to} ({summary}); {added} edges added, {removed} removed",
        {
          from: c.from.kind,
          to: c.to.kind,
          summary: c.to.summary,
          added: c.added.length,
          removed: c.removed.length,
        },
      );
      for (const fn of this.#listeners) fn(event);
    }
    return r.change;
  }

  /** Ticks every update interval, on `clock`, until `signal` aborts. */
  run(signal: AbortSignal, clock: Clock = systemClock): Promise<void> {
    return new Promise((resolve) => {
      this.tick(clock.now());
      const timer = clock.every(this.#options.updateIntervalMs, () => this.tick(clock.now()));
      signal.addEventListener("abort", () => {
        timer.cancel();
        resolve();
      }, { once: true });
    });
  }

  /** The state for the API and the CLI. */
  snapshot(maxMatrixEntries = 1000): TopologySnapshot {
    const current = this.vttif.current();
    return {
      updatedAt: this.#updatedAt,
      ticks: this.vttif.ticks,
      classification: current.classification,
      graph: current.graph,
      matrix: this.vttif.smoothedMatrix().slice(0, maxMatrixEntries),
      groupBytesPerSec: Object.fromEntries(this.#group),
      lastTickMs: this.#lastTickMs,
      parameters: this.#options,
      events: [...this.events],
    };
  }
}
