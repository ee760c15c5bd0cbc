/**
 * Carries out a validated rule instruction on this agent's switch.
 *
 * @module
 */

import { ruleId } from "../switch/forwarding_table.ts";
import type { Switch } from "../switch/switch.ts";
import { macOfWire, type RuleAdd, type RuleDel, type RulesSet } from "./messages.ts";

/** The instructions that change forwarding rules. */
export type RuleInstruction = RuleAdd | RuleDel | RulesSet;

/**
 * Applies `msg` to `sw`; returns a one-line description for the log. A rules-set changes only
 * what differs, so rules that stay keep their counters and never stop matching in between.
 */
export function applyRules(sw: Switch, msg: RuleInstruction): string {
  switch (msg.type) {
    case "rule-add": {
      const r = sw.rules.add({
        src: macOfWire(msg.rule.src),
        dst: macOfWire(msg.rule.dst),
        target: msg.rule.target,
        owner: msg.rule.owner,
        reason: msg.rule.reason,
      });
      return `rule ${r.id} -> ${r.target} added`;
    }
    case "rule-del": {
      const r = sw.rules.remove(macOfWire(msg.src), macOfWire(msg.dst));
      return r ? `rule ${r.id} removed` : "rule to remove was not there";
    }
    case "rules-set": {
      const wanted = new Map(msg.rules.map((r) => [ruleId(macOfWire(r.src), macOfWire(r.dst)), r]));
      const removed = sw.rules.removeWhere((r) =>
        r.owner === msg.owner && wanted.get(r.id)?.target !== r.target
      );
      // Rules this owner keeps, and other owners' rules (an operator's) for the same match,
      // which win: they are never overwritten.
      const taken = new Set(sw.rules.list().map((r) => r.id));
      let added = 0;
      for (const [id, r] of wanted) {
        if (taken.has(id)) continue;
        sw.rules.add({
          src: macOfWire(r.src),
          dst: macOfWire(r.dst),
          target: r.target,
          owner: msg.owner,
          reason: r.reason,
        });
        added++;
      }
      return `${msg.owner} rules #${msg.seq}: ${added} added, ${removed.length} removed`;
    }
  }
}
