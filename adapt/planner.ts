/**
 * The adaptation decision, as one pure function: from the inferred VM topology, where each VM
 * lives, which hosts can take direct links, which links exist now and the operator's settings,
 * to the fast-path links the overlay should have, the forwarding rules that use them, and a
 * one-line reason for every host pair so an operator can see why a pair is (not) direct.
 *
 * The stages, in order:
 *
 *     VM edges --(vmHost)--> host pairs (same-host edges need nothing; unknown VMs ignored)
 *       -> rank by bytes/s (ties by pair name)
 *       -> forbidden? ineligible host? -> star
 *       -> pinned -> direct (outside the budget)
 *       -> the budget k goes to the heaviest of the rest, current links favoured by keepMargin
 *       -> links, rules (both directions of every VM edge on a direct pair), toAdd, toRemove
 *
 * Hysteresis is what keeps links from flapping: a current link keeps its slot against a
 * challenger unless the challenger carries more than `1 + keepMargin` times its traffic. It is
 * applied as a score (a current link's bytes/s times `1 + keepMargin`), which for one kept
 * link against one challenger is exactly that rule, and between two current links (or two
 * challengers) is plain traffic order.
 *
 * No clock, no I/O: the loop that applies a plan owns time and the network.
 *
 * @module
 */

import type { TopologyGraph } from "../inference/topology.ts";
import { peerPort } from "../agent/switch/port_name.ts";
import { formatRate } from "../agent/rate.ts";

/** Two host names as one key `a|b` with `a < b`; build it with {@linkcode hostPair}. */
export type HostPair = string;

/** The operator's adaptation settings. */
export interface AdaptSettings {
  /** false: no fast-path links at all, pins included. */
  enabled: boolean;
  /** At most this many links besides pins; null: every host pair with traffic. */
  budget: number | null;
  /** Always linked when both hosts are eligible and the pair is not forbidden; outside the budget. */
  pins: HostPair[];
  /** Never linked, even if pinned. */
  forbids: HostPair[];
  /** Hysteresis: a current link is replaced only by a pair with more than (1 + this) times its traffic. */
  keepMargin: number;
}

/** What the planner decides over. */
export interface PlanInput {
  /** The current inferred topology (edges between VM MACs). */
  graph: TopologyGraph;
  /** VM MAC -> host name. VMs not here (unknown, or on the proxy's LAN) are ignored. */
  vmHost: ReadonlyMap<string, string>;
  /**
   * Hosts that can make and accept direct links (advertised a listen address, connected):
   * asked only of the hosts of the plan's pairs, so a caller may answer lazily.
   */
  eligible: Pick<ReadonlySet<string>, "has">;
  /** Fast-path links that exist now, up or being set up. */
  current: ReadonlySet<HostPair>;
  settings: AdaptSettings;
}

/** The decision for one host pair. */
export interface PairDecision {
  pair: HostPair;
  /** Sum of the traffic of all VM edges mapped to this host pair. */
  bytesPerSec: number;
  /** The VM edges this pair carries, each as [MAC on the pair's first host, MAC on its second], sorted. */
  vmPairs: [string, string][];
  /** 1 = heaviest of all pairs in the plan (pins, forbidden and ineligible pairs included). */
  rank: number;
  /** Chosen for a fast-path link. */
  direct: boolean;
  /** One human-readable line, starting with `direct:` or `star:`. */
  reason: string;
}

/** A forwarding rule a host should hold so that a VM edge uses its fast-path link. */
export interface ForwardingRuleSpec {
  /** The host that installs the rule. */
  host: string;
  /** Source VM MAC (lives on `host`). */
  src: string;
  /** Destination VM MAC (lives on the peer). */
  dst: string;
  /** `peer:OTHERHOST`. */
  target: string;
  reason: string;
}

/** The planner's output. */
export interface Plan {
  /** Desired fast-path links, sorted. */
  links: HostPair[];
  /** Every host pair that carries traffic or is pinned, sorted by rank. */
  decisions: PairDecision[];
  /** Both directions of every VM edge on a linked pair, sorted by (host, src, dst). */
  rules: ForwardingRuleSpec[];
  /** links - current, sorted. */
  toAdd: HostPair[];
  /** current - links, sorted. */
  toRemove: HostPair[];
}

const SEPARATOR = "|";

/**
 * The canonical key of the pair of hosts `a` and `b`, in either order.
 *
 * @throws {RangeError} when a host name is empty or contains `|`, or `a === b` (a host needs
 *   no link to itself)
 * @example
 * ```ts
 * import { hostPair } from "./planner.ts";
 * if (hostPair("h2", "h1") !== "h1|h2") throw new Error("canonical order");
 * try {
 *   hostPair("h1", "h1");
 *   throw new Error("unreachable");
 * } catch (e) {
 *   if (!(e instanceof RangeError)) throw e;
 * }
 * ```
 */
export function hostPair(a: string, b: string): HostPair {
  for (const h of [a, b]) {
    if (h === "" || h.includes(SEPARATOR)) {
      throw new RangeError(`Cannot form host pair: bad host name ${JSON.stringify(h)}`);
    }
  }
  if (a === b) throw new RangeError(`Cannot form host pair: both hosts are ${a}`);
  return a < b ? `${a}${SEPARATOR}${b}` : `${b}${SEPARATOR}${a}`;
}

/**
 * The two hosts of a canonical pair, smaller name first.
 *
 * @throws {RangeError} when `pair` is not what {@linkcode hostPair} returns
 * @example
 * ```ts
 * import { hostPair, splitPair } from "./planner.ts";
 * const [a, b] = splitPair(hostPair("web-2", "db-1"));
 * if (a !== "db-1" || b !== "web-2") throw new Error("round trip");
 * ```
 */
export function splitPair(pair: HostPair): [string, string] {
  const parts = pair.split(SEPARATOR);
  if (parts.length !== 2 || parts[0] === "" || !(parts[0] < parts[1])) {
    throw new RangeError(
      `Cannot split host pair: expected "a${SEPARATOR}b" with a < b, got ${JSON.stringify(pair)}`,
    );
  }
  return [parts[0], parts[1]];
}

/** A host pair while it is being decided. */
interface Candidate {
  pair: HostPair;
  hosts: [string, string];
  bytesPerSec: number;
  vmPairs: [string, string][];
  rank: number;
  direct: boolean;
  reason: string;
}

/**
 * Decides the fast-path links and the forwarding rules that use them. The same input always
 * gives the same plan, whatever the iteration order of its maps and sets.
 *
 * @throws {RangeError} when a setting is out of range or a pair is not canonical (the key is
 *   named)
 * @example
 * ```ts
 * import { hostPair, plan } from "./planner.ts";
 * const edge = (a: string, b: string, bytesPerSec: number) => ({ a, b, bytesPerSec, weight: 1 });
 * const p = plan({
 *   graph: {
 *     vms: ["m1", "m2", "m3"],
 *     edges: [edge("m1", "m2", 3e6), edge("m1", "m3", 1e6), edge("m2", "m3", 2e6)],
 *     maxBytesPerSec: 3e6,
 *   },
 *   vmHost: new Map([["m1", "h1"], ["m2", "h2"], ["m3", "h3"]]),
 *   eligible: new Set(["h1", "h2", "h3"]),
 *   current: new Set([hostPair("h1", "h3")]),
 *   settings: { enabled: true, budget: 2, pins: [], forbids: [], keepMargin: 0.5 },
 * });
 * if (p.links.join() !== "h1|h2,h2|h3") throw new Error("the two heaviest");
 * if (p.toRemove.join() !== "h1|h3") throw new Error("h1|h3 is 2x lighter: replaced");
 * if (p.rules.length !== 4) throw new Error("two VM edges, both ways");
 * ```
 */
export function plan(input: PlanInput): Plan {
  const { graph, vmHost, eligible, settings } = input;
  validateSettings(settings);
  const pins = canonicalSet(settings.pins, "settings.pins");
  const forbids = canonicalSet(settings.forbids, "settings.forbids");
  const current = canonicalSet(input.current, "current");

  const candidates = collect(graph, vmHost);
  for (const pair of pins) {
    if (!candidates.has(pair)) {
      candidates.set(pair, newCandidate(pair, splitPair(pair)));
    }
  }
  const ranked = [...candidates.values()].sort(byTraffic);
  ranked.forEach((c, i) => c.rank = i + 1);
  const of = `of ${ranked.length}`;

  // Competitors share the budget: eligible, allowed, not pinned, with traffic.
  const competitors: Candidate[] = [];
  for (const c of ranked) {
    if (!settings.enabled) {
      c.reason = "star: adaptation off";
    } else if (forbids.has(c.pair)) {
      c.reason = pins.has(c.pair)
        ? "star: forbidden by operator (also pinned; forbid wins)"
        : "star: forbidden by operator";
    } else if (c.hosts.some((h) => !eligible.has(h))) {
      const away = c.hosts.filter((h) => !eligible.has(h));
      c.reason = `star: ${away.join(" and ")} cannot be reached directly`;
    } else if (pins.has(c.pair)) {
      c.direct = true;
      c.reason = `direct: pinned by operator (rank ${c.rank} ${of}, ${formatRate(c.bytesPerSec)})`;
    } else if (c.bytesPerSec <= 0) {
      c.reason = "star: no traffic";
    } else {
      competitors.push(c);
    }
  }
  choose(competitors, { current, budget: settings.budget, keepMargin: settings.keepMargin, of });

  const links = ranked.filter((c) => c.direct).map((c) => c.pair).sort();
  const linked = new Set(links);
  return {
    links,
    decisions: ranked.map((c) => ({
      pair: c.pair,
      bytesPerSec: c.bytesPerSec,
      vmPairs: c.vmPairs,
      rank: c.rank,
      direct: c.direct,
      reason: c.reason,
    })),
    rules: rulesFor(ranked.filter((c) => c.direct)),
    toAdd: links.filter((p) => !current.has(p)),
    toRemove: [...current].filter((p) => !linked.has(p)).sort(),
  };
}

/** Folds VM edges into host pairs; same-host edges and unmapped VMs drop out here. */
function collect(
  graph: TopologyGraph,
  vmHost: ReadonlyMap<string, string>,
): Map<HostPair, Candidate> {
  const out = new Map<HostPair, Candidate>();
  for (const e of graph.edges) {
    const ha = vmHost.get(e.a);
    const hb = vmHost.get(e.b);
    if (ha === undefined || hb === undefined || ha === hb) continue;
    const pair = hostPair(ha, hb);
    let c = out.get(pair);
    if (!c) {
      c = newCandidate(pair, splitPair(pair));
      out.set(pair, c);
    }
    c.bytesPerSec += e.bytesPerSec;
    c.vmPairs.push(ha < hb ? [e.a, e.b] : [e.b, e.a]);
  }
  for (const c of out.values()) {
    c.vmPairs.sort((x, y) => compare(x[0], y[0]) || compare(x[1], y[1]));
  }
  return out;
}

function newCandidate(pair: HostPair, hosts: [string, string]): Candidate {
  return { pair, hosts, bytesPerSec: 0, vmPairs: [], rank: 0, direct: false, reason: "" };
}

/**
 * Gives the budget to the competitors (already in rank order) with the highest score, a
 * current link's score being its traffic times (1 + keepMargin); on equal scores a current
 * link wins (a challenger must be strictly heavier than the margin), then rank decides.
 */
function choose(
  competitors: Candidate[],
  options: {
    current: ReadonlySet<HostPair>;
    budget: number | null;
    keepMargin: number;
    of: string;
  },
): void {
  const { current, budget, keepMargin, of } = options;
  const factor = 1 + keepMargin;
  const kept = (c: Candidate) => current.has(c.pair);
  const score = (c: Candidate) => kept(c) ? c.bytesPerSec * factor : c.bytesPerSec;
  const k = budget ?? competitors.length;
  const budgetText = budget === null ? "budget unlimited" : `budget k=${budget}`;
  const byScore = [...competitors].sort((x, y) =>
    score(y) - score(x) || Number(kept(y)) - Number(kept(x)) || x.rank - y.rank
  );
  const winners = byScore.slice(0, k);
  const losers = byScore.slice(k);
  for (const c of winners) c.direct = true;

  const rate = (c: Candidate) => `rank ${c.rank} ${of}, ${formatRate(c.bytesPerSec)}`;
  for (const c of winners) {
    // The heaviest loser that outweighs this link was held off only by the margin.
    const challenger = losers.filter((l) => l.bytesPerSec > c.bytesPerSec)
      .sort((x, y) => x.rank - y.rank)[0];
    c.reason = challenger
      ? `direct: kept (hysteresis), ${rate(c)}; challenger rank ${challenger.rank} ` +
        `(${formatRate(challenger.bytesPerSec)}) is not ${formatFactor(factor)} heavier, ` +
        budgetText
      : `direct: ${rate(c)}, ${budgetText}`;
  }
  for (const c of losers) {
    const heldBy = winners.some((w) => w.bytesPerSec < c.bytesPerSec);
    c.reason = k === 0
      ? `star: budget k=0, pinned links only (${rate(c)})`
      : heldBy
      ? `star: budget k=${k} held by current links (hysteresis: not ${formatFactor(factor)} ` +
        `heavier; ${rate(c)})`
      : `star: budget k=${k} used by heavier pairs (${rate(c)})`;
  }
}

/** Both directions of every VM edge on the linked pairs; the VMs' edges are unicast pairs. */
function rulesFor(linked: Candidate[]): ForwardingRuleSpec[] {
  const rules: ForwardingRuleSpec[] = [];
  for (const c of linked) {
    const [h1, h2] = c.hosts;
    const why = `fast path ${c.pair}: ${c.reason.replace(/^direct: /, "")}`;
    for (const [a, b] of c.vmPairs) {
      rules.push({ host: h1, src: a, dst: b, target: peerPort(h2), reason: why });
      rules.push({ host: h2, src: b, dst: a, target: peerPort(h1), reason: why });
    }
  }
  return rules.sort((x, y) =>
    compare(x.host, y.host) || compare(x.src, y.src) || compare(x.dst, y.dst)
  );
}

function validateSettings(s: AdaptSettings): void {
  if (s.budget !== null && !(Number.isInteger(s.budget) && s.budget >= 0)) {
    throw new RangeError(
      `Cannot plan: settings.budget must be a non-negative integer or null, got ${s.budget}`,
    );
  }
  if (!(Number.isFinite(s.keepMargin) && s.keepMargin >= 0)) {
    throw new RangeError(
      `Cannot plan: settings.keepMargin must be a finite number >= 0, got ${s.keepMargin}`,
    );
  }
}

function canonicalSet(pairs: Iterable<HostPair>, key: string): Set<HostPair> {
  const out = new Set<HostPair>();
  for (const p of pairs) {
    try {
      splitPair(p);
    } catch (e) {
      throw new RangeError(`Cannot plan: ${key}: ${(e as Error).message}`);
    }
    out.add(p);
  }
  return out;
}

/** Heaviest first; equal traffic in pair-name order, so ranks never depend on input order. */
function byTraffic(x: Candidate, y: Candidate): number {
  return y.bytesPerSec - x.bytesPerSec || compare(x.pair, y.pair);
}

/** Code-unit order (not locale order): the same on every machine. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function formatFactor(f: number): string {
  return `${Number(f.toFixed(2))}x`;
}
