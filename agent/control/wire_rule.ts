/**
 * A forwarding rule as it travels: in rule-add and rules-set from the proxy, and in the API's
 * requests and replies. One shape and one validator for all three, so a rule the API accepts
 * is a rule a host accepts.
 *
 * @module
 */

import { ProtocolError } from "../link/wire.ts";
import { type Mac, parseMac } from "../switch/ethernet.ts";
import { macOrAny } from "./parse_fields.ts";

/** A forwarding rule as it travels: MACs as text, `null` for "any". */
export interface WireRule {
  src: string | null;
  dst: string | null;
  target: string;
  owner?: string;
  reason?: string;
}

const TARGET = /^(device|proxy|drop|(host|peer):[a-z0-9-]{1,63})$/;

/**
 * Validates a rule from a peer or an API client.
 *
 * @throws {ProtocolError} naming the bad field.
 * @example
 * ```ts
 * import { parseWireRule } from "./wire_rule.ts";
 * const r = parseWireRule({ src: "*", dst: "02:00:00:00:00:02", target: "peer:h2" });
 * if (r.src !== null || r.target !== "peer:h2") throw new Error();
 * ```
 */
export function parseWireRule(v: unknown): WireRule {
  if (typeof v !== "object" || v === null) {
    throw new ProtocolError("Cannot accept rule: not an object");
  }
  const o = v as Record<string, unknown>;
  if (typeof o.target !== "string" || !TARGET.test(o.target)) {
    throw new ProtocolError(
      "Cannot accept rule: target must be device, proxy, drop, host:NAME or peer:NAME",
    );
  }
  const text = (x: unknown, max: number) => (typeof x === "string" ? x.slice(0, max) : undefined);
  return {
    src: macOrAny(o.src, "src"),
    dst: macOrAny(o.dst, "dst"),
    target: o.target,
    owner: text(o.owner, 32),
    reason: text(o.reason, 300),
  };
}

/**
 * A wire MAC (or null) as the switch's number (or null).
 *
 * @example
 * ```ts
 * import { macOfWire } from "./wire_rule.ts";
 * if (macOfWire(null) !== null || macOfWire("00:00:00:00:00:01") !== 1) throw new Error();
 * ```
 */
export function macOfWire(v: string | null): Mac | null {
  return v === null ? null : parseMac(v);
}
