/**
 * What the operator changed at run time, kept across restarts: forwarding rules on the proxy
 * and for each host (`agent rules add/del`), the adaptation settings (`agent adapt set`), and
 * the placement decisions (`agent advise set`: moves, gain, cost, host slots, VM pins;
 * `agent adapt set migrate on|off`). Without it, a proxy restart silently undid the
 * operator's decisions.
 *
 *     state-dir/operator.json (0600, atomic, one write at a time):
 *     { "version": 2, "savedAt", "proxyRules": [WireRule], "hostRules": { HOST: [WireRule] },
 *       "adapt": { "enabled", "budget", "pins", "forbids" },
 *       "placement": { "settings": { "maxMoves", "minGain", "moveCost", "latencyWeight" },
 *                      "slots": { HOST: N }, "pins": [MAC], "migrate" } | null }
 *
 * A version-1 file (before placement was kept) still loads: its placement is null, so
 * placement starts from the configuration; the next save writes version 2. At start the saved
 * settings win over the configuration's (they are the operator's latest word); delete the
 * file to start from the configuration again.
 *
 * @module
 */

import { parseWireRule, type WireRule } from "../agent/control/messages.ts";
import { formatMac, parseMac } from "../agent/switch/ethernet.ts";
import { readSecretFileIfExists, writeSecretFile } from "../agent/secret_file.ts";
import type { AdaptSettings } from "../adapt/planner.ts";
import { PLACEMENT_LIMITS, type PlacementConfig, validSlots } from "./placement_service.ts";

/** The version this build writes; it reads this one and 1. */
export const OPERATOR_STATE_VERSION = 2;

/** The operator's placement decisions. */
export interface PlacementDecisions {
  settings: PlacementConfig;
  /** Slots the operator gave hosts (over their `--vm-slots`), connected or not. */
  slots: Record<string, number>;
  /** VMs (MAC text) never moved. */
  pins: string[];
  /** Whether the proxy carries out plans through `--migrate-hook`. */
  migrate: boolean;
}

/** The operator's run-time decisions. */
export interface OperatorState {
  proxyRules: WireRule[];
  hostRules: Record<string, WireRule[]>;
  adapt: Pick<AdaptSettings, "enabled" | "budget" | "pins" | "forbids">;
  /** Null: none kept (a version-1 file, or a proxy without placement). */
  placement: PlacementDecisions | null;
}

/** Loads and saves `state-dir/operator.json`. */
export class OperatorStore {
  readonly path: string;
  /** What was saved before this start, or null. */
  readonly saved: (OperatorState & { savedAt: number }) | null;

  private constructor(path: string, saved: (OperatorState & { savedAt: number }) | null) {
    this.path = path;
    this.saved = saved;
  }

  /**
   * Reads the saved state, if any.
   *
   * @throws {Error} naming the file and the fix when it is unreadable or malformed.
   */
  static async load(stateDir: string): Promise<OperatorStore> {
    const path = `${stateDir}/operator.json`;
    const text = await readSecretFileIfExists(path);
    if (text === null) return new OperatorStore(path, null);
    try {
      return new OperatorStore(path, parseState(JSON.parse(text)));
    } catch (e) {
      throw new Error(
        `Cannot restore the operator's rules and settings from ${path}: ${(e as Error).message}. ` +
          "Fix it, or delete it to start from the configuration alone",
      );
    }
  }

  /** Keeps `state` (replacing what was kept); saves are synchronous, so they land in order. */
  save(state: OperatorState, now: number): Promise<void> {
    const file = { version: OPERATOR_STATE_VERSION, savedAt: now, ...state };
    return writeSecretFile(this.path, JSON.stringify(file, null, 1) + "\n");
  }
}

function parseState(v: unknown): OperatorState & { savedAt: number } {
  const o = v as Record<string, unknown>;
  if (typeof o !== "object" || o === null || (o.version !== 1 && o.version !== 2)) {
    throw new TypeError(`not a version-1 or version-${OPERATOR_STATE_VERSION} operator state`);
  }
  const rules = (x: unknown) => {
    if (!Array.isArray(x)) throw new TypeError("rules must be lists");
    return x.map(parseWireRule);
  };
  const hostRules: Record<string, WireRule[]> = {};
  for (const [host, list] of Object.entries((o.hostRules ?? {}) as Record<string, unknown>)) {
    hostRules[host] = rules(list);
  }
  const a = (o.adapt ?? {}) as Record<string, unknown>;
  const pairs = (x: unknown) =>
    Array.isArray(x) && x.every((p) => typeof p === "string") ? x as string[] : [];
  if (typeof a.enabled !== "boolean") throw new TypeError("adapt.enabled must be true or false");
  if (a.budget !== null && !(Number.isInteger(a.budget) && (a.budget as number) >= 0)) {
    throw new TypeError("adapt.budget must be null or a count");
  }
  return {
    savedAt: typeof o.savedAt === "number" ? o.savedAt : 0,
    proxyRules: rules(o.proxyRules ?? []),
    hostRules,
    adapt: {
      enabled: a.enabled,
      budget: a.budget as number | null,
      pins: pairs(a.pins),
      forbids: pairs(a.forbids),
    },
    placement: o.version === 1 ? null : parsePlacement(o.placement),
  };
}

/** The placement part of a version-2 file; null stays null. */
function parsePlacement(v: unknown): PlacementDecisions | null {
  if (v === null || v === undefined) return null;
  const p = v as Record<string, unknown>;
  if (typeof p !== "object" || typeof p.settings !== "object" || p.settings === null) {
    throw new TypeError("placement must be null or have settings");
  }
  const given = p.settings as Record<string, unknown>;
  const settings = {} as PlacementConfig;
  for (const key of Object.keys(PLACEMENT_LIMITS) as (keyof PlacementConfig)[]) {
    const x = given[key];
    if (typeof x !== "number" || !PLACEMENT_LIMITS[key].ok(x)) {
      throw new TypeError(`placement.settings.${key} must be ${PLACEMENT_LIMITS[key].want}`);
    }
    settings[key] = x;
  }
  const slots: Record<string, number> = {};
  for (const [host, n] of Object.entries((p.slots ?? {}) as Record<string, unknown>)) {
    if (!validSlots(host, n)) {
      throw new TypeError(`placement.slots.${host.slice(0, 63)} must be a count from 0 to 100000`);
    }
    slots[host] = n as number;
  }
  if (!Array.isArray(p.pins ?? [])) throw new TypeError("placement.pins must be a list of MACs");
  const pins = ((p.pins ?? []) as unknown[]).map((mac) => {
    try {
      return formatMac(parseMac(String(mac)));
    } catch {
      throw new TypeError(`placement.pins: ${String(mac).slice(0, 40)} is not a MAC`);
    }
  });
  if (typeof p.migrate !== "boolean") {
    throw new TypeError("placement.migrate must be true or false");
  }
  return { settings, slots, pins, migrate: p.migrate };
}
