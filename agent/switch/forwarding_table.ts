/**
 * Forwarding rules: (source MAC or any, destination MAC or any) -> target port.
 *
 * The most specific rule wins: exact pair, then destination only, then source only, then
 * the catch-all. A rule whose target port is not usable right now (a fast-path link that is
 * down) is passed over and the next most specific one applies, so losing a link falls back
 * to the star at once, without anybody deleting rules first: no black hole, no loop.
 *
 * One rule per (src, dst) match: adding a rule for the same match replaces the old one.
 *
 * @module
 */

import { formatMac, type Mac } from "./ethernet.ts";

/** Target that discards matching frames. */
export const DROP_TARGET = "drop";

/** A forwarding rule as callers give it. */
export interface RuleSpec {
  /** Source MAC to match, or null for any. */
  src: Mac | null;
  /** Destination MAC to match, or null for any. */
  dst: Mac | null;
  /** Port name to send matching frames to (`device`, `proxy`, `peer:NAME`...) or `drop`. */
  target: string;
  /** Who installed it (`operator`, `adapt`, ...), for listing and bulk removal. */
  owner?: string;
  /** Free text shown to operators: why this rule exists. */
  reason?: string;
}

/** A rule in the table, with its counters. */
export interface ForwardingRule extends Required<RuleSpec> {
  /** Stable id derived from the match, e.g. `02:..:01>02:..:02` or `*>02:..:02`. */
  id: string;
  /** Frames the rule forwarded. */
  frames: number;
  /** Bytes the rule forwarded (virtio-net header excluded). */
  bytes: number;
}

/** The id of the rule matching (src, dst). */
export function ruleId(src: Mac | null, dst: Mac | null): string {
  return `${src === null ? "*" : formatMac(src)}>${dst === null ? "*" : formatMac(dst)}`;
}

/**
 * The rule table with most-specific-match lookup in at most four map reads.
 *
 * @example
 * ```ts
 * import { ForwardingTable } from "./forwarding_table.ts";
 * const t = new ForwardingTable();
 * t.add({ src: null, dst: 2, target: "proxy" });
 * t.add({ src: 1, dst: 2, target: "peer:b" });
 * const up = (port: string) => port !== "peer:b";
 * if (t.lookup(1, 2, () => true)?.target !== "peer:b") throw new Error("exact wins");
 * if (t.lookup(1, 2, up)?.target !== "proxy") throw new Error("falls back when link is down");
 * ```
 */
export class ForwardingTable {
  readonly #exact = new Map<Mac, Map<Mac, ForwardingRule>>();
  readonly #byDst = new Map<Mac, ForwardingRule>();
  readonly #bySrc = new Map<Mac, ForwardingRule>();
  #any: ForwardingRule | null = null;
  #size = 0;

  /** Number of rules. */
  get size(): number {
    return this.#size;
  }

  /** Adds or replaces the rule for (src, dst); returns it. */
  add(spec: RuleSpec): ForwardingRule {
    const rule: ForwardingRule = {
      id: ruleId(spec.src, spec.dst),
      src: spec.src,
      dst: spec.dst,
      target: spec.target,
      owner: spec.owner ?? "operator",
      reason: spec.reason ?? "",
      frames: 0,
      bytes: 0,
    };
    const old = this.#put(rule);
    if (old === null) this.#size++;
    return rule;
  }

  /** Removes the rule for (src, dst); returns it, or null when there was none. */
  remove(src: Mac | null, dst: Mac | null): ForwardingRule | null {
    let old: ForwardingRule | null = null;
    if (src !== null && dst !== null) {
      const inner = this.#exact.get(dst);
      old = inner?.get(src) ?? null;
      if (old) {
        inner!.delete(src);
        if (inner!.size === 0) this.#exact.delete(dst);
      }
    } else if (dst !== null) {
      old = this.#byDst.get(dst) ?? null;
      this.#byDst.delete(dst);
    } else if (src !== null) {
      old = this.#bySrc.get(src) ?? null;
      this.#bySrc.delete(src);
    } else {
      old = this.#any;
      this.#any = null;
    }
    if (old) this.#size--;
    return old;
  }

  /** Removes every rule `match` selects; returns them. */
  removeWhere(match: (rule: ForwardingRule) => boolean): ForwardingRule[] {
    const gone = this.list().filter(match);
    for (const r of gone) this.remove(r.src, r.dst);
    return gone;
  }

  /**
   * The most specific rule for (src, dst) whose target `usable` accepts, or null.
   * `drop` is always usable.
   */
  lookup(src: Mac, dst: Mac, usable: (target: string) => boolean): ForwardingRule | null {
    const exact = this.#exact.get(dst)?.get(src);
    if (exact && (exact.target === DROP_TARGET || usable(exact.target))) return exact;
    const d = this.#byDst.get(dst);
    if (d && (d.target === DROP_TARGET || usable(d.target))) return d;
    const s = this.#bySrc.get(src);
    if (s && (s.target === DROP_TARGET || usable(s.target))) return s;
    const a = this.#any;
    if (a && (a.target === DROP_TARGET || usable(a.target))) return a;
    return null;
  }

  /** Every rule, most specific first. */
  list(): ForwardingRule[] {
    const out: ForwardingRule[] = [];
    for (const inner of this.#exact.values()) out.push(...inner.values());
    out.push(...this.#byDst.values(), ...this.#bySrc.values());
    if (this.#any) out.push(this.#any);
    return out;
  }

  #put(rule: ForwardingRule): ForwardingRule | null {
    let old: ForwardingRule | null;
    if (rule.src !== null && rule.dst !== null) {
      let inner = this.#exact.get(rule.dst);
      if (!inner) this.#exact.set(rule.dst, inner = new Map());
      old = inner.get(rule.src) ?? null;
      inner.set(rule.src, rule);
    } else if (rule.dst !== null) {
      old = this.#byDst.get(rule.dst) ?? null;
      this.#byDst.set(rule.dst, rule);
    } else if (rule.src !== null) {
      old = this.#bySrc.get(rule.src) ?? null;
      this.#bySrc.set(rule.src, rule);
    } else {
      old = this.#any;
      this.#any = rule;
    }
    return old;
  }
}
