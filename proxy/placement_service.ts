/**
 * Where VMs should live, asked of the pure planner (adapt/placement.ts) with what the proxy
 * knows now:
 *
 *     VTTIF's graph (smoothed VM edges) ─┐
 *     MAC table (VM -> host) ────────────┤
 *     host slots: the operator's word, else the host's --vm-slots, else no room
 *     pins (the operator's VMs that never move), settings (moves, gain, move cost)
 *     underlay (proxy/underlay_service.ts: per host pair, its path) ─┴─> planPlacement -> plan
 *
 * `agent advise` shows the plan and its reasons; proxy/migrator.ts carries it out when the
 * operator turned migration on.
 *
 * @module
 */

import { formatMac, parseMac } from "../agent/switch/ethernet.ts";
import {
  placementCost,
  type PlacementInput,
  type PlacementPlan,
  type PlacementSettings,
  planPlacement,
} from "../adapt/placement.ts";
import type { TopologyGraph } from "../inference/topology.ts";
import type { UnderlayService } from "./underlay_service.ts";

/**
 * Cost of one migration, in the cost's unit (path-seconds per second): a move must take at
 * least 5% of one path's busy time off to pay for itself.
 */
export const DEFAULT_MOVE_COST = 0.05;

/** The operator's placement settings (`PUT /api/placement`, the config's keys). */
export interface PlacementConfig {
  maxMoves: number;
  minGain: number;
  moveCost: number;
  latencyWeight: number;
}

/**
 * What each placement setting may be: one table for `PUT /api/placement` and for what
 * operator.json brings back (proxy/operator_state.ts).
 */
export const PLACEMENT_LIMITS: {
  readonly [K in keyof PlacementConfig]: { ok(x: number): boolean; want: string };
} = {
  maxMoves: {
    ok: (x) => Number.isInteger(x) && x >= 0 && x <= 10_000,
    want: "a whole number 0-10000",
  },
  minGain: { ok: (x) => x >= 0 && x <= 1, want: "a fraction from 0 to 1" },
  moveCost: { ok: (x) => Number.isFinite(x) && x >= 0, want: "a number >= 0" },
  latencyWeight: { ok: (x) => Number.isFinite(x) && x >= 0, want: "a number >= 0" },
};

/**
 * Whether `slots` VMs is a count the operator may give host `host`.
 *
 * @example
 * ```ts
 * import { validSlots } from "./placement_service.ts";
 * if (!validSlots("h1", 4) || validSlots("h1", -1) || validSlots("H 1", 4)) throw new Error();
 * ```
 */
export function validSlots(host: unknown, slots: unknown): boolean {
  return typeof host === "string" && /^[a-z0-9-]{1,63}$/.test(host) &&
    Number.isInteger(slots) && (slots as number) >= 0 && (slots as number) <= 100_000;
}

/** What the placement service reads of the proxy. */
export interface PlacementSources {
  /** VTTIF's current graph. */
  graph(): TopologyGraph;
  /** VM MAC -> host, from the proxy's MAC table. */
  vmHosts(): ReadonlyMap<string, string>;
  /** Connected hosts. */
  hosts(): Iterable<string>;
  /** Per host pair, its path (proxy/underlay_service.ts). */
  underlay: Pick<UnderlayService, "pathCosts">;
}

/** One host's capacity as the planner takes it. */
export interface HostSlotsView {
  host: string;
  slots: number;
  /** Who said: the operator (API), the host (--vm-slots), or nobody (no room beyond its VMs). */
  source: "operator" | "host" | "none";
  /** VMs the overlay knows there. */
  vms: number;
}

/** A plan with when it was made. */
export type TimedPlan = PlacementPlan & { at: number };

/** `GET /api/placement` (the migration part is added by the migrator). */
export interface PlacementView {
  settings: PlacementConfig;
  hosts: HostSlotsView[];
  /** The slots the operator gave each host, connected or not (kept across restarts). */
  operatorSlots: Record<string, number>;
  pinned: string[];
  plan: TimedPlan;
}

/** Plans VM placements from the proxy's knowledge; holds the operator's slots and pins. */
export class PlacementService {
  settings: PlacementConfig;
  /** VMs (MAC text) the operator pinned: never moved. */
  readonly pinned = new Set<string>();
  /** Slots the operator set per host; they win over what the host announced. */
  readonly operatorSlots = new Map<string, number>();
  readonly #announced = new Map<string, number>();
  readonly #sources: PlacementSources;

  constructor(sources: PlacementSources, settings: PlacementConfig) {
    this.#sources = sources;
    this.settings = settings;
  }

  /** A host said at join how many VMs it can hold (`--vm-slots`); null: it did not say. */
  announce(host: string, slots: number | null): void {
    if (slots === null) this.#announced.delete(host);
    else this.#announced.set(host, slots);
  }

  /** Every connected host's slots, and where the number comes from. */
  hostSlots(vmHost: ReadonlyMap<string, string> = this.#sources.vmHosts()): HostSlotsView[] {
    const count = new Map<string, number>();
    for (const h of vmHost.values()) count.set(h, (count.get(h) ?? 0) + 1);
    return [...new Set(this.#sources.hosts())].sort().map((host) => {
      const vms = count.get(host) ?? 0;
      const op = this.operatorSlots.get(host);
      const said = this.#announced.get(host);
      if (op !== undefined) return { host, slots: op, source: "operator", vms };
      if (said !== undefined) return { host, slots: said, source: "host", vms };
      return { host, slots: vms, source: "none", vms };
    });
  }

  /**
   * The planner's input now. VMs in `hold` are treated as pinned too (the migrator rests VMs
   * whose move failed or did not help).
   */
  input(now: number, hold: Iterable<string> = []): PlacementInput {
    const vmHost = this.#sources.vmHosts();
    const hosts = this.hostSlots(vmHost);
    const s = this.settings;
    const settings: PlacementSettings = {
      maxMoves: s.maxMoves,
      minGain: s.minGain,
      moveCost: s.moveCost,
      latencyWeight: s.latencyWeight,
    };
    return {
      edges: this.#sources.graph().edges,
      vmHost,
      slots: new Map(hosts.map((h) => [h.host, h.slots])),
      pinned: new Set([...this.pinned, ...hold]),
      underlay: this.#sources.underlay.pathCosts(hosts.map((h) => h.host), now),
      settings,
    };
  }

  /** A plan now. */
  plan(now: number, hold: Iterable<string> = []): TimedPlan {
    return { ...planPlacement(this.input(now, hold)), at: now };
  }

  /** The cost of where the VMs are now, with the traffic and underlay known now. */
  cost(now: number): number {
    const inp = this.input(now);
    return placementCost(inp.edges, inp.vmHost, {
      underlay: inp.underlay,
      latencyWeight: this.settings.latencyWeight,
    });
  }

  /** The settings, capacities, pins and a fresh plan. */
  view(now: number, hold: Iterable<string> = []): PlacementView {
    return {
      settings: { ...this.settings },
      hosts: this.hostSlots(),
      operatorSlots: Object.fromEntries([...this.operatorSlots].sort()),
      pinned: [...this.pinned].sort(),
      plan: this.plan(now, hold),
    };
  }

  /**
   * Applies an operator's change: `{maxMoves?, minGain?, moveCost?, latencyWeight?, pin?: MAC,
   * unpin?: MAC, slots?: [HOST, N|null]}` (null: back to what the host said).
   *
   * @throws {TypeError} naming the field when a value is out of range (nothing is changed)
   * @example
   * ```ts
   * import { PlacementService } from "./placement_service.ts";
   * import { EMPTY_GRAPH } from "../inference/mod.ts";
   * const underlay = { pathCosts: () => () => null };
   * const p = new PlacementService({
   *   graph: () => EMPTY_GRAPH, vmHosts: () => new Map(), hosts: () => ["h1"], underlay,
   * }, { maxMoves: 4, minGain: 0.1, moveCost: 0.05, latencyWeight: 0 });
   * p.change({ pin: "02:00:00:00:00:0A", slots: ["h1", 3], maxMoves: 2 });
   * if (!p.pinned.has("02:00:00:00:00:0a") || p.hostSlots()[0].slots !== 3) throw new Error();
   * ```
   */
  change(body: unknown): void {
    if (typeof body !== "object" || body === null) {
      throw new TypeError("Cannot change placement: send a JSON object");
    }
    const b = body as Record<string, unknown>;
    const next = { ...this.settings };
    for (const key of Object.keys(PLACEMENT_LIMITS) as (keyof PlacementConfig)[]) {
      if (!(key in b)) continue;
      const v = b[key];
      if (typeof v !== "number" || !PLACEMENT_LIMITS[key].ok(v)) {
        throw new TypeError(
          `Cannot change placement: ${key} must be ${PLACEMENT_LIMITS[key].want}`,
        );
      }
      next[key] = v;
    }
    const mac = (key: string) => {
      try {
        return formatMac(parseMac(String(b[key])));
      } catch {
        throw new TypeError(`Cannot change placement: ${key} takes a VM's MAC`);
      }
    };
    const pin = "pin" in b ? mac("pin") : null;
    const unpin = "unpin" in b ? mac("unpin") : null;
    const slots = "slots" in b ? slotsArg(b.slots) : null;
    this.settings = next;
    if (pin) this.pinned.add(pin);
    if (unpin) this.pinned.delete(unpin);
    if (slots && slots[1] === null) this.operatorSlots.delete(slots[0]);
    else if (slots) this.operatorSlots.set(slots[0], slots[1]!);
  }
}

function slotsArg(v: unknown): [string, number | null] {
  const ok = Array.isArray(v) && v.length === 2 && typeof v[0] === "string" &&
    (v[1] === null ? validSlots(v[0], 0) : validSlots(v[0], v[1]));
  if (!ok) {
    throw new TypeError(
      "Cannot change placement: slots takes [HOST, N] (N from 0 to 100000, or null for the " +
        "host's own --vm-slots)",
    );
  }
  return [v[0], v[1]];
}
