/**
 * What the operator changed at run time survives restarts: at start, the rules, adaptation
 * settings and placement decisions saved in `state-dir/operator.json` are put back (they win
 * over the configuration: they are the operator's latest word); afterwards every change is
 * saved through `persist`.
 *
 * @module
 */

import type { Clock } from "../agent/clock.ts";
import type { Config } from "../agent/config/schema.ts";
import { logger } from "../agent/log.ts";
import { addProxyRule, hostRuleKey, operatorState } from "./api.ts";
import type { ProxyCore } from "./core.ts";
import { OperatorStore, type PlacementDecisions } from "./operator_state.ts";
import type { PlacementParts } from "./placement_parts.ts";

/** What the operator's decisions are restored into and saved from. */
export type OperatorParts = Pick<ProxyCore, "sw" | "hosts" | "adapt"> & {
  /** Placement, when this proxy has it. */
  placement?: Pick<PlacementParts, "service" | "migrator">;
};

/** Restores the saved decisions into `parts`; returns the function that saves them anew. */
export async function keepOperatorDecisions(
  config: Config,
  parts: OperatorParts,
  clock: Clock,
): Promise<() => Promise<void>> {
  const { sw, hosts, adapt, placement } = parts;
  const operator = await OperatorStore.load(config.stateDir);
  const saved = operator.saved;
  if (saved) {
    for (const r of saved.proxyRules) addProxyRule(sw, r);
    for (const [host, rules] of Object.entries(saved.hostRules)) {
      hosts.rules.set(host, new Map(rules.map((r) => [hostRuleKey(r.src, r.dst), r])));
    }
    adapt.settings = { ...adapt.settings, ...saved.adapt };
    const placed = placement && saved.placement
      ? restorePlacement(saved.placement, placement)
      : "placement from the configuration (none saved)";
    logger("proxy").info(
      "Restored the operator's {rules} rules, adaptation settings and {placement} (saved {at}) " +
        "from {path}; delete it to start from the configuration",
      {
        rules: saved.proxyRules.length +
          Object.values(saved.hostRules).reduce((n, l) => n + l.length, 0),
        placement: placed,
        at: new Date(saved.savedAt).toISOString(),
        path: operator.path,
      },
    );
  }
  return () =>
    operator.save(
      operatorState({ switch: sw, hostRules: hosts.rules, adapt, placement }),
      clock.now(),
    );
}

/**
 * Puts saved placement decisions back; says what it restored, in words. Migration stays off
 * without a hook to carry it out (as `agent adapt set migrate on` is refused then).
 */
function restorePlacement(
  saved: PlacementDecisions,
  placement: NonNullable<OperatorParts["placement"]>,
): string {
  const { service, migrator } = placement;
  service.settings = { ...saved.settings };
  service.pinned.clear();
  for (const mac of saved.pins) service.pinned.add(mac);
  service.operatorSlots.clear();
  for (const [host, n] of Object.entries(saved.slots)) service.operatorSlots.set(host, n);
  let migrate = saved.migrate ? "on" : "off";
  if (saved.migrate && !migrator.hook) {
    migrate = "off (saved on, but this proxy has no --migrate-hook)";
    logger("placement").warn(
      "Migration was on when the proxy stopped, but it has no --migrate-hook now: advice only. " +
        "Give --migrate-hook CMD, then `agent adapt set migrate on`",
    );
  } else {
    migrator.enabled = saved.migrate;
  }
  return `placement (${saved.pins.length} pinned VMs, slots for ` +
    `${Object.keys(saved.slots).length} hosts, at most ${saved.settings.maxMoves} moves, ` +
    `min gain ${saved.settings.minGain}, migration ${migrate})`;
}
