/**
 * What the operator changed at run time survives restarts: at start, the rules and adaptation
 * settings saved in `state-dir/operator.json` are put back (they win over the configuration:
 * they are the operator's latest word); afterwards every change is saved through `persist`.
 *
 * @module
 */

import type { Clock } from "../agent/clock.ts";
import type { Config } from "../agent/config/schema.ts";
import { logger } from "../agent/log.ts";
import { addProxyRule, hostRuleKey, operatorState } from "./api.ts";
import type { ProxyCore } from "./core.ts";
import { OperatorStore } from "./operator_state.ts";

/** Restores the saved decisions into `core`; returns the function that saves them anew. */
export async function keepOperatorDecisions(
  config: Config,
  core: Pick<ProxyCore, "sw" | "hosts" | "adapt">,
  clock: Clock,
): Promise<() => Promise<void>> {
  const { sw, hosts, adapt } = core;
  const operator = await OperatorStore.load(config.stateDir);
  const saved = operator.saved;
  if (saved) {
    for (const r of saved.proxyRules) addProxyRule(sw, r);
    for (const [host, rules] of Object.entries(saved.hostRules)) {
      hosts.rules.set(host, new Map(rules.map((r) => [hostRuleKey(r.src, r.dst), r])));
    }
    adapt.settings = { ...adapt.settings, ...saved.adapt };
    logger("proxy").info(
      "Restored the operator's {rules} rules and adaptation settings (saved {at}) from {path}; " +
        "delete it to start from the configuration",
      {
        rules: saved.proxyRules.length +
          Object.values(saved.hostRules).reduce((n, l) => n + l.length, 0),
        at: new Date(saved.savedAt).toISOString(),
        path: operator.path,
      },
    );
  }
  return () =>
    operator.save(operatorState({ switch: sw, hostRules: hosts.rules, adapt }), clock.now());
}
