/**
 * Placement carried out: with migration on and a hook, the proxy moves VMs itself, one at a
 * time, and checks each move against what it measures afterwards.
 *
 *     idle --(plan has a move; its VM not resting)--> hook(VM, FROM, TO)
 *       -> hook fails, or the VM is not seen on TO in time -> failed: the VM rests
 *       -> the MAC table has the VM on TO (the AdaptLoop re-plans links on that move)
 *          -> a stopover (the step gains nothing alone): the plan's next move, no measuring
 *          -> settle (VTTIF sees the new traffic) -> cost now vs before the move
 *             -> lower: kept; the next plan is made from scratch
 *             -> not lower: the move did not help: hook(VM, TO, FROM), and the VM rests
 *
 * Never two moves at once, never a pinned VM (the planner gets pins and resting VMs as
 * pinned, and a revert of a VM pinned meanwhile is skipped); every step is an event with its
 * reason. A move in progress finishes when migration is turned off (a live migration cannot
 * be taken back halfway); stopping the proxy kills the hook.
 *
 * @module
 */

import { type Clock, systemClock } from "../agent/clock.ts";
import { logger } from "../agent/log.ts";
import type { PlacementMove } from "../adapt/placement.ts";
import type { HookResult, MigrateHook } from "./migrate_hook.ts";
import type { PlacementService, TimedPlan } from "./placement_service.ts";

/** How a move ended. */
export type MoveOutcome = "kept" | "stopover" | "failed" | "reverted";

/** One migration as the proxy carried it out. */
export interface MoveRecord {
  vm: string;
  from: string;
  to: string;
  /** The planner's reason for it. */
  reason: string;
  /** Cost cut the planner predicted for this step. */
  predictedGain: number;
  /** Cost of the placement before the move (measured, the unit of the planner's cost). */
  costBefore: number;
  costAfter: number | null;
  /** costBefore - costAfter, measured once the traffic settled. */
  measuredGain: number | null;
  startedAt: number;
  /** When the hook (or the hook moving it back) returned. */
  hookDoneAt: number | null;
  arrivedAt: number | null;
  endedAt: number | null;
  /** hook: migrating until the overlay sees the VM on its new host. */
  phase: "hook" | "settling" | "reverting" | "done";
  outcome: MoveOutcome | null;
  /** Why it ended as it did. */
  why: string;
  hook: HookResult | null;
}

/** A step of a move, as the event stream reports it (stamped with `at` by the proxy). */
export interface PlacementEvent {
  type: "placement";
  vm: string;
  from: string;
  to: string;
  phase: "started" | "arrived" | "kept" | "stopover" | "failed" | "reverting" | "reverted";
  reason: string;
  predictedGain?: number;
  measuredGain?: number;
}

/** What the migrator works with. */
export interface MigratorParts {
  placement: PlacementService;
  /** The host the proxy's MAC table has `vm` behind now, or null. */
  hostOf(vm: string): string | null;
  emit(e: PlacementEvent): void;
  clock?: Clock;
}

/** Timing; every field has a default. */
export interface MigratorOptions {
  /** After the VM arrived, wait this long before measuring. Default 15 s. */
  settleMs?: number;
  /** After the hook succeeded, the VM must be seen on its new host within this. Default 60 s. */
  arriveTimeoutMs?: number;
  /** A VM whose move failed or did not help is left alone this long (doubling). Default 10 min. */
  restMs?: number;
  /** Plans at most this often while idle. Default 10 s. */
  planEveryMs?: number;
  /** The state machine's tick. Default 1 s. */
  intervalMs?: number;
}

/** `GET /api/placement`'s migration part. */
export interface MigrationView {
  enabled: boolean;
  /** The hook's command, or null: advice only. */
  hook: string | null;
  current: MoveRecord | null;
  /** Recent moves, oldest first. */
  history: MoveRecord[];
  resting: { vm: string; until: number }[];
}

/** Moves kept in the history. */
export const MAX_MOVE_HISTORY = 100;
const MAX_REST_MS = 3_600_000;

/** Executes placement plans through the hook, one move at a time. */
export class Migrator {
  enabled: boolean;
  hook: MigrateHook | null;
  readonly history: MoveRecord[] = [];
  readonly #parts: MigratorParts;
  readonly #clock: Clock;
  readonly #o: Required<MigratorOptions>;
  readonly #resting = new Map<string, { until: number; strikes: number }>();
  readonly #stop = new AbortController();
  #current: MoveRecord | null = null;
  #hookResult: HookResult | null = null;
  #queue: PlacementMove[] = [];
  #nextPlanAt = 0;
  readonly #log = logger("placement");

  constructor(
    parts: MigratorParts,
    init: { enabled: boolean; hook: MigrateHook | null },
    options: MigratorOptions = {},
  ) {
    this.#parts = parts;
    this.#clock = parts.clock ?? systemClock;
    this.enabled = init.enabled;
    this.hook = init.hook;
    this.#o = {
      settleMs: options.settleMs ?? 15_000,
      arriveTimeoutMs: options.arriveTimeoutMs ?? 60_000,
      restMs: options.restMs ?? 600_000,
      planEveryMs: options.planEveryMs ?? 10_000,
      intervalMs: options.intervalMs ?? 1000,
    };
  }

  /** VMs left alone for now (their last move failed or did not help). */
  resting(now: number): string[] {
    return [...this.#resting].filter(([, r]) => r.until > now).map(([vm]) => vm);
  }

  /** Asks for a plan at the next tick (e.g. after the operator changed something). */
  replan(): void {
    this.#nextPlanAt = 0;
  }

  /** Advances the move in progress, or starts the next one; safe to call any time. */
  tick(now: number): void {
    const m = this.#current;
    if (m) return this.#advance(m, now);
    if (!this.enabled || !this.hook) return;
    let next = this.#queue.shift();
    if (!next) {
      if (now < this.#nextPlanAt) return;
      this.#nextPlanAt = now + this.#o.planEveryMs;
      const plan: TimedPlan = this.#parts.placement.plan(now, this.resting(now));
      [next, ...this.#queue] = plan.moves;
      if (!next) return;
    }
    // A queued stopover's plan may be stale; the VM must still be where the plan found it.
    if (this.#parts.placement.pinned.has(next.vm) || this.#parts.hostOf(next.vm) !== next.from) {
      this.#queue = [];
      return;
    }
    this.#start(next, now);
  }

  #start(move: PlacementMove, now: number): void {
    const m: MoveRecord = {
      vm: move.vm,
      from: move.from,
      to: move.to,
      reason: move.reason,
      predictedGain: move.gain,
      costBefore: this.#parts.placement.cost(now),
      costAfter: null,
      measuredGain: null,
      startedAt: now,
      hookDoneAt: null,
      arrivedAt: null,
      endedAt: null,
      phase: "hook",
      outcome: null,
      why: "",
      hook: null,
    };
    this.#current = m;
    this.history.push(m);
    if (this.history.length > MAX_MOVE_HISTORY) this.history.shift();
    this.#log.info("Migrating VM {vm} from {from} to {to}: {reason}", { ...m });
    this.#event(m, "started", m.reason);
    this.#runHook(m, m.from, m.to);
  }

  #runHook(m: MoveRecord, from: string, to: string): void {
    this.#hookResult = null;
    this.hook!.run(m.vm, from, to, this.#stop.signal).catch((e): HookResult => ({
      ok: false,
      code: null,
      output: `the hook threw: ${(e as Error).message}`,
    })).then((r) => {
      if (this.#current !== m) return;
      this.#hookResult = r;
      m.hook = r;
      this.#advance(m, this.#clock.now());
    });
  }

  #advance(m: MoveRecord, now: number): void {
    const reverting = m.phase === "reverting";
    if (m.phase === "hook" || reverting) {
      const r = this.#hookResult;
      if (r === null) return; // still migrating
      if (!r.ok) {
        const what = reverting ? "moving it back failed" : "the hook failed";
        return this.#fail(m, now, `${what} (exit ${r.code ?? "-"}): ${r.output || "no output"}`);
      }
      m.hookDoneAt ??= now;
      const target = reverting ? m.from : m.to;
      if (this.#parts.hostOf(m.vm) !== target) {
        if (now - m.hookDoneAt < this.#o.arriveTimeoutMs) return;
        return this.#fail(m, now, `the overlay did not see ${m.vm} on ${target} in time`);
      }
      if (reverting) return this.#end(m, now, "reverted", m.why);
      m.arrivedAt = now;
      m.phase = "settling";
      this.#event(m, "arrived", `the overlay sees ${m.vm} on ${m.to}`);
      if (m.predictedGain <= 0 && this.#queue.length > 0) {
        this.#end(m, now, "stopover", "a step of the plan; the next one follows");
      }
      return;
    }
    if (m.phase === "settling" && now - m.arrivedAt! >= this.#o.settleMs) this.#measure(m, now);
  }

  #measure(m: MoveRecord, now: number): void {
    m.costAfter = this.#parts.placement.cost(now);
    m.measuredGain = m.costBefore - m.costAfter;
    const shown = `cost ${fmt(m.costBefore)} -> ${fmt(m.costAfter)} (predicted -${
      fmt(m.predictedGain)
    })`;
    if (m.measuredGain > 1e-9 * Math.max(1, m.costBefore)) {
      this.#resting.delete(m.vm);
      return this.#end(m, now, "kept", `it helped: ${shown}`);
    }
    const why = `it did not help: ${shown}`;
    this.#rest(m.vm, now);
    if (this.#parts.placement.pinned.has(m.vm)) {
      return this.#end(m, now, "kept", `${why}; not moved back: the operator pinned it`);
    }
    m.phase = "reverting";
    m.why = why;
    m.hookDoneAt = null;
    this.#log.warn("VM {vm}'s move to {to} {why}; moving it back to {from}", { ...m, why });
    this.#event(m, "reverting", why);
    this.#runHook(m, m.to, m.from);
  }

  #fail(m: MoveRecord, now: number, why: string): void {
    this.#rest(m.vm, now);
    this.#queue = [];
    this.#end(m, now, "failed", why);
  }

  #rest(vm: string, now: number): void {
    const strikes = (this.#resting.get(vm)?.strikes ?? 0) + 1;
    const ms = Math.min(MAX_REST_MS, this.#o.restMs * 2 ** (strikes - 1));
    this.#resting.set(vm, { until: now + ms, strikes });
  }

  #end(m: MoveRecord, now: number, outcome: MoveOutcome, why: string): void {
    m.phase = "done";
    m.outcome = outcome;
    m.why = why;
    m.endedAt = now;
    this.#current = null;
    this.#hookResult = null;
    if (outcome !== "stopover") {
      this.#queue = [];
      this.#nextPlanAt = now; // re-plan from what is known now
    }
    const log = outcome === "failed" || outcome === "reverted" ? "warn" : "info";
    this.#log[log]("Move of VM {vm} from {from} to {to}: {outcome}, {why}", { ...m });
    this.#event(m, outcome, why);
  }

  #event(m: MoveRecord, phase: PlacementEvent["phase"], reason: string): void {
    this.#parts.emit({
      type: "placement",
      vm: m.vm,
      from: m.from,
      to: m.to,
      phase,
      reason,
      predictedGain: m.predictedGain,
      ...(m.measuredGain === null ? {} : { measuredGain: m.measuredGain }),
    });
  }

  /** The state for the API. */
  view(now: number): MigrationView {
    return {
      enabled: this.enabled,
      hook: this.hook?.describe ?? null,
      current: this.#current,
      history: [...this.history],
      resting: [...this.#resting]
        .filter(([, r]) => r.until > now)
        .map(([vm, r]) => ({ vm, until: r.until })),
    };
  }

  /** Ticks every interval until `signal` aborts; then kills a running hook. */
  run(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const t = this.#clock.every(this.#o.intervalMs, () => this.tick(this.#clock.now()));
      signal.addEventListener("abort", () => {
        t.cancel();
        this.#stop.abort();
        resolve();
      }, { once: true });
    });
  }
}

function fmt(x: number): string {
  return Number(x.toPrecision(3)).toString();
}
