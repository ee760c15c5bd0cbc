/**
 * What the operator changed at run time, kept across restarts: forwarding rules on the proxy
 * and for each host (`agent rules add/del`), and the adaptation settings (`agent adapt set`).
 * Without it, a proxy restart silently undid the operator's decisions.
 *
 *     state-dir/operator.json (0600, atomic, one write at a time):
 *     { "version": 1, "savedAt", "proxyRules": [WireRule], "hostRules": { HOST: [WireRule] },
 *       "adapt": { "enabled", "budget", "pins", "forbids" } }
 *
 * At start the saved adaptation settings win over the configuration's (they are the
 * operator's latest word); delete the file to start from the configuration again.
 *
 * @module
 */

import { parseWireRule, type WireRule } from "../agent/control/messages.ts";
import { readSecretFileIfExists, SerialSecretFile } from "../agent/secret_file.ts";
import type { AdaptSettings } from "../adapt/planner.ts";

/** The operator's run-time decisions. */
export interface OperatorState {
  proxyRules: WireRule[];
  hostRules: Record<string, WireRule[]>;
  adapt: Pick<AdaptSettings, "enabled" | "budget" | "pins" | "forbids">;
}

/** Loads and saves `state-dir/operator.json`. */
export class OperatorStore {
  readonly path: string;
  /** What was saved before this start, or null. */
  readonly saved: (OperatorState & { savedAt: number }) | null;
  readonly #file: SerialSecretFile;

  private constructor(path: string, saved: (OperatorState & { savedAt: number }) | null) {
    this.path = path;
    this.saved = saved;
    this.#file = new SerialSecretFile(path);
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

  /** Keeps `state` (replacing what was kept); saves run one after another. */
  save(state: OperatorState, now: number): Promise<void> {
    return this.#file.write(JSON.stringify({ version: 1, savedAt: now, ...state }, null, 1) + "\n");
  }
}

function parseState(v: unknown): OperatorState & { savedAt: number } {
  const o = v as Record<string, unknown>;
  if (typeof o !== "object" || o === null || o.version !== 1) {
    throw new TypeError("not a version-1 operator state");
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
  };
}
