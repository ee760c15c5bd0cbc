/**
 * Active RTT probes of host pairs, light and bounded. The underlay book (adapt/underlay.ts)
 * learns RTTs passively: star keepalives time every star link, fast paths' keepalives time
 * every fast path. A pair of hosts whose VMs talk only over the star has no RTT of its own, and
 * the sum of its two star links' is wrong for two hosts on one site behind a far proxy. For
 * such pairs, and only those placement cares about, one host of the pair times a round trip
 * to the other's fast-path listener (agent/fastpath/peer_probe.ts) and says what it measured.
 *
 *     every PROBE_INTERVAL_MS (on the underlay service's sampling):
 *       candidates (probeCandidates): the host pairs VM traffic crosses, busiest first, then
 *         the pairs among the PROBE_HOSTS busiest hosts holding VMs that talk (where placement
 *         would move them): at most MAX_CANDIDATES, never every pair of the connected hosts
 *       -> skip: an end not connected, fast path up (its keepalives time it), a fresh probed
 *          RTT, probed within staleMs, no end the proxy reached, the dialer busy
 *       -> at most perRound, least recently probed first: probe-peer {peer, address, key} to
 *          the dialer, the end whose peer's listener the proxy reached itself (the earlier
 *          name when it reached both, as adapt/link_setup.ts picks who dials)
 *     probe-result from host H about P -> asked of H about P, within answerMs, RTT in
 *       [0, MAX_RTT_MS] -> book.observeRtt(H, P, rtt, now, "probe")
 *       | refused and counted: unasked, late, out of range
 *
 * Rate: at most perRound probes per interval for the whole proxy (4 per 10 s), one at a time
 * per dialing host, each pair at most once per staleMs; hosts add their own bound (one in
 * flight, one a second). A probe measures no bandwidth: a pair it timed is still unmeasured
 * for the planner's bandwidth. The book's probeSent is not used: it would hide the pair from
 * the view's `unmeasured` list (pairs with no bandwidth of their own), which a probe does not
 * change.
 *
 * @module
 */

import type { ProbeResult } from "../agent/control/host_messages.ts";
import type { ProbePeer } from "../agent/control/proxy_messages.ts";
import { type HostPair, hostPair, splitPair } from "../adapt/planner.ts";
import { MAX_RTT_MS, type UnderlayBook, type UnderlayEstimate } from "../adapt/underlay.ts";

/** How often a round of probes may be sent. */
export const PROBE_INTERVAL_MS = 10_000;
/** Probes per round, for the whole proxy. */
export const PROBES_PER_ROUND = 4;
/** A pair is probed again after this long; a probed RTT younger than this is fresh. */
export const PROBE_STALE_MS = 120_000;
/** A probe not answered within this is unanswered (the host gives up after 5 s). */
export const PROBE_ANSWER_MS = 15_000;
/** Hosts holding talking VMs whose pairs are candidates (32: 496 pairs). */
export const PROBE_HOSTS = 32;
/** Candidate pairs looked at per round, at most. */
export const MAX_CANDIDATES = 1024;

/** Why a probe-result was not taken. */
export type ProbeRefusal = "unasked" | "late" | "out of range";

/** What the probes did, for `/api/underlay` and `/metrics`. */
export interface ProbeCounts {
  /** probe-peer messages sent. */
  sent: number;
  /** Probes answered with an RTT that was taken. */
  answered: number;
  /** Probes answered with an error (the peer did not answer the dialer, or it refused). */
  failed: number;
  /** Probes with no answer within answerMs. */
  unanswered: number;
  /** probe-result messages refused, by reason. */
  refused: Record<ProbeRefusal, number>;
  /** The newest failure, as `dialer -> peer: why`, or null. */
  lastFailure: string | null;
  /** Probes waiting for their answer now. */
  outstanding: number;
}

/** Tuning; every field has a default (the constants above). */
export interface ProbeOptions {
  intervalMs?: number;
  perRound?: number;
  staleMs?: number;
  answerMs?: number;
  maxHosts?: number;
}

/** What sending probes needs of the proxy. */
export interface ProbeTargets {
  /** Where peers dial `host`: an address the proxy reached it at itself, else null. */
  listen(host: string): string | null;
  /** The key `host` joined with, or null. */
  keyOf(host: string): string | null;
  /** Sends probe-peer to `host`; false when it could not be sent. */
  send(host: string, msg: ProbePeer): boolean;
}

/** One round's view of the overlay (bounded: VM traffic, not every host). */
export interface ProbeRound {
  /** VM traffic per host pair it crosses, bytes/s. */
  pairRates: ReadonlyMap<HostPair, number>;
  /** Per host, the bytes/s of its VMs' traffic (either end). */
  hostRates: ReadonlyMap<string, number>;
  connected(host: string): boolean;
  direct(pair: HostPair): boolean;
  /** The book's estimate of the pair now. */
  estimate(a: string, b: string): UnderlayEstimate | null;
}

/** A probe chosen: `dialer` times a round trip to `msg.peer`. */
export interface ProbeOrder {
  dialer: string;
  pair: HostPair;
  msg: ProbePeer;
}

/**
 * The pairs worth probing, most useful first: those VM traffic crosses (busiest first), then
 * the pairs among the `maxHosts` busiest hosts. At most {@linkcode MAX_CANDIDATES}; the cost
 * is the VM traffic's size, never the number of connected hosts.
 *
 * @example
 * ```ts
 * import { probeCandidates } from "./underlay_probes.ts";
 * const pairs = new Map([["h1|h2", 5e6]]);
 * const hosts = new Map([["h1", 5e6], ["h2", 5e6], ["h3", 1e3]]);
 * const got = probeCandidates(pairs, hosts, 3).join(" ");
 * if (got !== "h1|h2 h1|h3 h2|h3") throw new Error(got);
 * ```
 */
export function probeCandidates(
  pairRates: ReadonlyMap<HostPair, number>,
  hostRates: ReadonlyMap<string, number>,
  maxHosts: number,
): HostPair[] {
  const byRate = <K extends string>(m: ReadonlyMap<K, number>) =>
    [...m].sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0)).map((e) => e[0]);
  const out = new Set<HostPair>(byRate(pairRates).slice(0, MAX_CANDIDATES));
  const busiest = byRate(hostRates).slice(0, maxHosts);
  for (let i = 0; i < busiest.length && out.size < MAX_CANDIDATES; i++) {
    for (let j = i + 1; j < busiest.length && out.size < MAX_CANDIDATES; j++) {
      out.add(hostPair(busiest[i], busiest[j]));
    }
  }
  return [...out];
}

interface Outstanding {
  pair: HostPair;
  sentAt: number;
  /** Counted as unanswered already (kept until staleMs to tell a late answer). */
  expired: boolean;
}

/** The proxy's probes: which to send, and which answers to take. */
export class UnderlayProbes {
  readonly #targets: ProbeTargets | null;
  readonly #o: Required<ProbeOptions>;
  /** By `dialer>peer`; kept until staleMs after sending. */
  readonly #outstanding = new Map<string, Outstanding>();
  /** When each pair was last probed (pairs probed within staleMs only). */
  readonly #probedAt = new Map<HostPair, number>();
  #lastRound = -Infinity;
  readonly #counts: Omit<ProbeCounts, "outstanding"> = {
    sent: 0,
    answered: 0,
    failed: 0,
    unanswered: 0,
    refused: { "unasked": 0, "late": 0, "out of range": 0 },
    lastFailure: null,
  };

  /** @param targets how to reach hosts; null: no probe is ever sent (answers are refused) */
  constructor(targets: ProbeTargets | null, options: ProbeOptions = {}) {
    this.#targets = targets;
    this.#o = {
      intervalMs: options.intervalMs ?? PROBE_INTERVAL_MS,
      perRound: options.perRound ?? PROBES_PER_ROUND,
      staleMs: options.staleMs ?? PROBE_STALE_MS,
      answerMs: options.answerMs ?? PROBE_ANSWER_MS,
      maxHosts: options.maxHosts ?? PROBE_HOSTS,
    };
  }

  /** Counts so far. */
  counts(): ProbeCounts {
    const c = this.#counts;
    return { ...c, refused: { ...c.refused }, outstanding: this.#pending().size };
  }

  /**
   * Sends a round of probes if one is due at `now` (`round` is read only then); returns the
   * probes sent.
   */
  tick(now: number, round: () => ProbeRound): ProbeOrder[] {
    this.#expire(now);
    if (this.#targets === null || now - this.#lastRound < this.#o.intervalMs) return [];
    this.#lastRound = now;
    const sent: ProbeOrder[] = [];
    for (const order of this.choose(round(), now)) {
      if (!this.#targets.send(order.dialer, order.msg)) continue;
      this.#outstanding.set(`${order.dialer}>${order.msg.peer}`, {
        pair: order.pair,
        sentAt: now,
        expired: false,
      });
      this.#probedAt.set(order.pair, now);
      this.#counts.sent++;
      sent.push(order);
    }
    return sent;
  }

  /**
   * The probes to send at `now` (nothing is recorded: {@linkcode tick} does that). Pairs that
   * need one, least recently probed first, at most perRound, one per dialer.
   */
  choose(round: ProbeRound, now: number): ProbeOrder[] {
    if (this.#targets === null) return [];
    const due: { pair: HostPair; at: number }[] = [];
    for (const pair of probeCandidates(round.pairRates, round.hostRates, this.#o.maxHosts)) {
      const [a, b] = splitPair(pair);
      if (!round.connected(a) || !round.connected(b) || round.direct(pair)) continue;
      const at = this.#probedAt.get(pair);
      if (at !== undefined && now - at < this.#o.staleMs) continue;
      const e = round.estimate(a, b);
      const probed = e?.rttSource === "probe" && e.rttAgeMs !== null &&
        e.rttAgeMs < this.#o.staleMs;
      if (!probed) due.push({ pair, at: at ?? -Infinity });
    }
    // Stable: among pairs probed equally long ago, candidate order (the busiest first) wins.
    due.sort((x, y) => (x.at === y.at ? 0 : x.at < y.at ? -1 : 1));
    const busy = new Set([...this.#pending().keys()].map((k) => k.slice(0, k.indexOf(">"))));
    const out: ProbeOrder[] = [];
    for (const { pair } of due) {
      if (out.length >= this.#o.perRound) break;
      const order = this.#orderFor(pair, busy);
      if (order) {
        busy.add(order.dialer);
        out.push(order);
      }
    }
    return out;
  }

  /**
   * Takes host `host`'s probe-result at `now` into `book`, or refuses and counts it: only an
   * answer to a probe this proxy asked of `host` about that peer, within answerMs, with an RTT
   * from 0 to MAX_RTT_MS. Never throws: a bad answer costs the host nothing but the answer.
   *
   * @returns what became of it
   */
  observe(
    host: string,
    result: ProbeResult,
    now: number,
    book: UnderlayBook,
  ): "taken" | "failed" | ProbeRefusal {
    const key = `${host}>${result.peer}`;
    const o = this.#outstanding.get(key);
    if (!o) return this.#refuse("unasked");
    this.#outstanding.delete(key);
    if (o.expired || now - o.sentAt > this.#o.answerMs) return this.#refuse("late");
    if ("error" in result) {
      this.#counts.failed++;
      this.#counts.lastFailure = `${host} -> ${result.peer}: ${result.error}`;
      return "failed";
    }
    const rtt = result.rttMs;
    if (!(Number.isFinite(rtt) && rtt >= 0 && rtt <= MAX_RTT_MS)) {
      return this.#refuse("out of range");
    }
    if (!book.observeRtt(host, result.peer, rtt, now, "probe")) return this.#refuse("out of range");
    this.#counts.answered++;
    return "taken";
  }

  /** The probe of `pair` from an end that is not busy, to an end the proxy reached. */
  #orderFor(pair: HostPair, busy: ReadonlySet<string>): ProbeOrder | null {
    const [a, b] = splitPair(pair);
    for (const [dialer, peer] of [[a, b], [b, a]]) {
      if (busy.has(dialer)) continue;
      const address = this.#targets!.listen(peer);
      const key = this.#targets!.keyOf(peer);
      if (address !== null && key !== null) {
        return { dialer, pair, msg: { type: "probe-peer", peer, key, address } };
      }
    }
    return null;
  }

  /** Probes still waiting for their answer. */
  #pending(): Map<string, Outstanding> {
    return new Map([...this.#outstanding].filter(([, o]) => !o.expired));
  }

  /** Marks probes past answerMs unanswered; forgets what is older than staleMs. */
  #expire(now: number): void {
    for (const [key, o] of this.#outstanding) {
      if (!o.expired && now - o.sentAt > this.#o.answerMs) {
        o.expired = true;
        this.#counts.unanswered++;
      }
      if (now - o.sentAt >= this.#o.staleMs) this.#outstanding.delete(key);
    }
    for (const [pair, at] of this.#probedAt) {
      if (now - at >= this.#o.staleMs) this.#probedAt.delete(pair);
    }
  }

  #refuse(reason: ProbeRefusal): ProbeRefusal {
    this.#counts.refused[reason]++;
    return reason;
  }
}
