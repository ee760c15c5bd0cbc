/**
 * The adaptation's forwarding rules on each host, kept declaratively: every change sends the
 * host its whole rule set (`rules-set`, with a sequence number) and the host answers
 * `rules-applied`. A reconnected host gets its set anew, so nothing is replayed.
 *
 *     sync(wanted, hosts)   -> rules-set {owner: adapt, seq, rules} to each host whose set changed
 *     applied(host, seq)    <- rules-applied
 *     converged(hosts)      every host applied its latest set
 *
 * @module
 */

import type { ProxyMessage, WireRule } from "../agent/control/messages.ts";
import { peerOfPort } from "../agent/switch/port_name.ts";
import { type ForwardingRuleSpec, type HostPair, hostPair } from "./planner.ts";

/** The owner name of the adaptation's rules on hosts. */
export const ADAPT_OWNER = "adapt";

/** The key of an empty set: most hosts hold one, and it is compared, not serialised. */
const EMPTY_KEY = "[]";

/** Rule sets sent to hosts and the sequence each host acknowledged. */
export class RuleSync {
  readonly #send: (host: string, msg: ProxyMessage) => boolean;
  readonly #sent = new Map<string, { seq: number; key: string }>();
  readonly #applied = new Map<string, number>();
  #seq = 0;

  constructor(send: (host: string, msg: ProxyMessage) => boolean) {
    this.#send = send;
  }

  /** Forgets what `host` holds (it joined again, or left). */
  forget(host: string): void {
    this.#sent.delete(host);
    this.#applied.delete(host);
  }

  /** `host` applied rule set `seq`. */
  applied(host: string, seq: number): void {
    this.#applied.set(host, seq);
  }

  /**
   * Sends each host of `hosts` whose wanted rules (`wanted`, where a host absent holds none)
   * differ from what it was last sent its new set. Runs every reconcile: a host without rules
   * costs one lookup, not a serialisation (10,000 of those were a sixth of an idle proxy's
   * work).
   */
  sync(wanted: ReadonlyMap<string, WireRule[]>, hosts: Iterable<string>): void {
    for (const h of hosts) {
      const rules = wanted.get(h);
      const sent = this.#sent.get(h)?.key;
      if (rules === undefined && sent === EMPTY_KEY) continue;
      const key = rules === undefined ? EMPTY_KEY : JSON.stringify(rules);
      if (sent === key) continue;
      const seq = ++this.#seq;
      if (this.#send(h, { type: "rules-set", owner: ADAPT_OWNER, seq, rules: rules ?? [] })) {
        this.#sent.set(h, { seq, key });
      }
    }
  }

  /** The sequence of the last set sent to `host` (0: none). */
  sentSeq(host: string): number {
    return this.#sent.get(host)?.seq ?? 0;
  }

  /** Whether `host` applied set `seq` or a later one. */
  hasApplied(host: string, seq: number): boolean {
    return (this.#applied.get(host) ?? -1) >= seq;
  }

  /** True when every host of `hosts` applied the latest set it was sent. */
  converged(hosts: Iterable<string>): boolean {
    for (const h of hosts) {
      const sent = this.#sent.get(h);
      if (!sent || (this.#applied.get(h) ?? -1) < sent.seq) return false;
    }
    return true;
  }
}

/**
 * Each host's adaptation rules: the plan's rules whose fast path is in `live` (up on both
 * ends), as they travel; a host without any is absent.
 */
export function rulesPerHost(
  rules: readonly ForwardingRuleSpec[],
  live: ReadonlySet<HostPair>,
): Map<string, WireRule[]> {
  const out = new Map<string, WireRule[]>();
  for (const r of rules) {
    const peer = peerOfPort(r.target);
    if (peer === null || !live.has(hostPair(r.host, peer))) continue;
    let set = out.get(r.host);
    if (!set) out.set(r.host, set = []);
    set.push({
      src: r.src,
      dst: r.dst,
      target: r.target,
      owner: ADAPT_OWNER,
      reason: r.reason,
    });
  }
  return out;
}
