/**
 * The operator's adaptation settings from the configuration; they change at runtime through
 * the API (`agent adapt set ...`).
 *
 * @module
 */

import type { Config } from "../agent/config/schema.ts";
import { type AdaptSettings, hostPair } from "./planner.ts";

/** Hysteresis of link choice: a challenger must carry 50% more than a link it would replace. */
export const DEFAULT_KEEP_MARGIN = 0.5;

/** Adaptation settings from `config`. */
export function adaptSettingsOf(config: Config): AdaptSettings {
  return {
    enabled: config.adapt,
    budget: config.fastPaths,
    pins: config.pin.map(([a, b]) => hostPair(a, b)),
    forbids: config.forbid.map(([a, b]) => hostPair(a, b)),
    keepMargin: DEFAULT_KEEP_MARGIN,
  };
}
