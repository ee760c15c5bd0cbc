/**
 * Carries out a validated control message on this agent's switch.
 *
 * @module
 */

import type { Switch } from "../switch/switch.ts";
import { type ControlMessage, macOfWire } from "./messages.ts";

/** Applies `msg` to `sw`; returns a one-line description for the log. */
export function applyControl(sw: Switch, msg: ControlMessage): string {
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
    case "traffic":
      throw new TypeError("Cannot apply a traffic report on a host: reports go to the proxy");
  }
}
