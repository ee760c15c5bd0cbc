/**
 * The underlay as the proxy learns it, passively, from what the overlay already carries; fed
 * every update interval into the pure {@linkcode UnderlayBook} (adapt/underlay.ts):
 *
 *     star links (proxy <-> host): keepalive RTT          -> pair "(proxy)|HOST", keepalive
 *                                  bytes both ways / interval -> pair "(proxy)|HOST", star
 *     VM traffic (VTTIF's smoothed matrix) summed per host pair, both ways
 *                                  -> pair "A|B", fast-path when the pair's fast path is up,
 *                                     else star (VMs that moved lately are left out: their
 *                                     smoothed rates still hold traffic from the old host)
 *     hosts' path-rtt reports (their fast paths' keepalive RTT, sent when it changed)
 *                                  -> checked (observePathRtts: only the reporter's own pairs
 *                                     whose fast path is up; plausible values; not too often;
 *                                     refusals counted) -> pair "A|B" RTT, fast-path
 *     a few pairs VM traffic makes matter, with no fast path: probed (underlay_probes.ts),
 *       one host times a round trip to the other -> checked -> pair "A|B" RTT, probe
 *       -> pathCosts(now): per host pair the better of what the pair itself carried and the
 *          star path (the smaller bandwidth of its two star links); the RTT is the pair's own
 *          (its fast path's while up, else a fresh probe's), else the sum of its star links'
 *       -> view(now): every pair, what the planner takes for it, and where the bottleneck is
 *
 * Probes time RTT only: one light enough to be harmless measures no bandwidth (a bandwidth
 * probe must fill the path). Host pairs that never carried traffic stay priced as their star
 * path, a lower bound; `unmeasured` lists them, probed or not.
 *
 * @module
 */

import { type Clock, systemClock } from "../agent/clock.ts";
import type { PathEstimate } from "../adapt/placement.ts";
import { type HostPair, hostPair, splitPair } from "../adapt/planner.ts";
import { pairPricer, type PlannedPathView } from "./path_price.ts";
export type { PlannedPathView } from "./path_price.ts";
import {
  FULL_VIEW_HOSTS,
  PATH_RTT_REFUSALS,
  type PathRttRefusal,
  type UnderlayPairView,
  type UnderlayView,
} from "./underlay_view.ts";
export {
  FULL_VIEW_HOSTS,
  type PathRttRefusal,
  type UnderlayPairView,
  type UnderlayView,
} from "./underlay_view.ts";
import type { ProbeResult } from "../agent/control/host_messages.ts";
import {
  type ProbeOptions,
  type ProbeRefusal,
  type ProbeTargets,
  UnderlayProbes,
} from "./underlay_probes.ts";
import { MAX_RTT_MS, UnderlayBook, type UnderlayEstimate } from "../adapt/underlay.ts";

/** The proxy's end of every star link, as the underlay book names it (no host can be named so). */
export const STAR = "(proxy)";

/** Samples below this rate say nothing about a path (keepalives, ARP). */
export const MIN_SAMPLE_BYTES_PER_SEC = 1000;

/**
 * path-rtt reports from one host closer together than this are refused: a host checks every
 * 2 s (agent/traffic/path_rtt.ts), and one that floods would outweigh the book's smoothing.
 */
export const MIN_PATH_RTT_GAP_MS = 500;

/** What the underlay service reads of the proxy. */
export interface UnderlaySources {
  /**
   * Connected hosts' star links: the keepalive RTT and the bytes sent and received so far
   * (read once a second for every host: live views, not snapshots).
   */
  starLinks(): Iterable<[string, StarLinkCounters]>;
  /** VTTIF's smoothed VM matrix (directed entries, bytes/s). */
  matrix(): Iterable<{ src: string; dst: string; bytesPerSec: number }>;
  /** VM MAC -> its host and since when it is there (ms), or null (looked up per matrix entry). */
  vm(mac: string): { host: string; since: number } | null;
  /** Whether the fast path of `pair` is up. */
  direct(pair: HostPair): boolean;
  /** How to ask hosts for RTT probes; absent: none are sent (answers are refused). */
  probeTargets?: ProbeTargets;
}

/** What a star link's counters say. */
export interface StarLinkCounters {
  readonly rttMs: number | null;
  readonly txBytes: number;
  readonly rxBytes: number;
}

/** The last sample of one star link. */
interface LinkSample {
  tx: number;
  rx: number;
  at: number;
  rtt: number | null;
  /** The round that last saw the link (an older one: its host is gone). */
  round: number;
}

/** Tuning; every field has a default. */
export interface UnderlayServiceOptions {
  /** A bandwidth sample older than this is not priced. Default 5 min. */
  maxAgeMs?: number;
  /** VMs that moved within this are left out of host-pair samples. Default 15 s. */
  settleMs?: number;
  /** Sampling period. Default 1 s. */
  intervalMs?: number;
  windowMs?: number;
  /** The active RTT probes' bounds (underlay_probes.ts). */
  probes?: ProbeOptions;
}

/** Feeds the underlay book from the proxy and prices host pairs for placement. */
export class UnderlayService {
  readonly book: UnderlayBook;
  /** The active RTT probes of pairs with no RTT of their own. */
  readonly probes: UnderlayProbes;
  readonly #sources: UnderlaySources;
  readonly #maxAgeMs: number;
  readonly #settleMs: number;
  readonly #intervalMs: number;
  readonly #last = new Map<string, LinkSample>();
  #round = 0;
  /** Per host, when its last path-rtt report was taken (connected hosts only). */
  readonly #pathRttAt = new Map<string, number>();
  /** Entries of path-rtt reports refused, by reason. */
  readonly pathRttRefused = Object.fromEntries(
    PATH_RTT_REFUSALS.map((r) => [r, 0]),
  ) as Record<PathRttRefusal, number>;
  #updatedAt = 0;
  #proxyRate = 0;
  #proxyBest = 0;

  constructor(sources: UnderlaySources, options: UnderlayServiceOptions = {}) {
    this.#sources = sources;
    this.book = new UnderlayBook({ windowMs: options.windowMs });
    this.#maxAgeMs = options.maxAgeMs ?? 300_000;
    this.#settleMs = options.settleMs ?? 15_000;
    this.#intervalMs = options.intervalMs ?? 1000;
    this.probes = new UnderlayProbes(sources.probeTargets ?? null, options.probes);
  }

  /** Takes one round of samples at `now` (ms since epoch). */
  sample(now: number): void {
    this.#updatedAt = now;
    // Every host, every second: the loop allocates nothing once a host has been seen.
    const round = ++this.#round;
    let total = 0;
    for (const [host, link] of this.#sources.starLinks()) {
      const { rttMs, txBytes: tx, rxBytes: rx } = link;
      let prev = this.#last.get(host);
      // A keepalive RTT is one measurement, taken when it changes (an idle link measures once
      // per idle ping): re-observing 10,000 each second was a sixth of an idle proxy's work.
      if (rttMs !== null && rttMs !== prev?.rtt) {
        this.book.observeRtt(STAR, host, rttMs, now, "keepalive");
      }
      if (!prev) {
        this.#last.set(host, prev = { tx, rx, at: now, rtt: rttMs, round });
        continue;
      }
      // A replaced link starts its counters afresh: no sample across it.
      const rate = now <= prev.at || tx < prev.tx || rx < prev.rx
        ? null
        : (tx - prev.tx + rx - prev.rx) * 1000 / (now - prev.at);
      prev.tx = tx, prev.rx = rx, prev.at = now, prev.rtt = rttMs, prev.round = round;
      if (rate === null) continue;
      total += rate;
      if (rate >= MIN_SAMPLE_BYTES_PER_SEC) {
        this.book.observeThroughput(STAR, host, rate, now, "star");
      }
    }
    const seen = (h: string) => this.#last.get(h)?.round === round;
    for (const [host, s] of this.#last) if (s.round !== round) this.#last.delete(host);
    for (const host of this.#pathRttAt.keys()) if (!seen(host)) this.#pathRttAt.delete(host);
    this.#proxyRate = total;
    this.#proxyBest = Math.max(this.#proxyBest, total);
    const traffic = this.#vmTraffic(now);
    for (const [pair, rate] of traffic.pairs) {
      if (rate < MIN_SAMPLE_BYTES_PER_SEC) continue;
      const [a, b] = splitPair(pair);
      this.book.observeThroughput(
        a,
        b,
        rate,
        now,
        this.#sources.direct(pair) ? "fast-path" : "star",
      );
    }
    this.probes.tick(now, () => ({
      pairRates: traffic.pairs,
      hostRates: traffic.hosts,
      connected: seen,
      direct: (pair) => this.#sources.direct(pair),
      estimate: (a, b) => this.book.estimate(a, b, now),
    }));
  }

  /**
   * Takes host `host`'s answer to a probe (probe-result) at `now`: only one this proxy asked
   * of it, in time, with a plausible RTT; the rest is refused and counted, never thrown.
   */
  observeProbeResult(
    host: string,
    result: ProbeResult,
    now: number,
  ): "taken" | "failed" | ProbeRefusal {
    return this.probes.observe(host, result, now, this.book);
  }

  /**
   * Takes host `host`'s report of its fast paths' RTTs (a path-rtt message, its shape already
   * checked by the parser) at `now`. An entry counts only for the pair (host, peer), and only
   * while that pair's fast path is up: a host cannot speak for pairs it is not part of, nor
   * for a path it does not have. Everything refused is counted by reason, never thrown: a bad
   * value from one host must not cost it its star link.
   *
   * @returns how many entries were taken
   * @example
   * ```ts
   * import { UnderlayService } from "./underlay_service.ts";
   * const u = new UnderlayService({
   *   starLinks: () => [], matrix: () => [], vm: () => null,
   *   direct: (pair) => pair === "h1|h2",
   * });
   * const taken = u.observePathRtts("h1", [["h2", 0.4], ["h3", 0.2], ["h2", -1]], 1000);
   * if (taken !== 1 || u.book.estimate("h1", "h2", 1000)?.rttMs !== 0.4) throw new Error();
   * if (u.pathRttRefused["no fast path"] !== 1 || u.pathRttRefused["duplicate peer"] !== 1) {
   *   throw new Error("counted");
   * }
   * ```
   */
  observePathRtts(
    host: string,
    paths: readonly (readonly [string, number])[],
    now: number,
  ): number {
    const last = this.#pathRttAt.get(host);
    if (last !== undefined && now >= last && now - last < MIN_PATH_RTT_GAP_MS) {
      this.pathRttRefused["too often"] += paths.length;
      return 0;
    }
    this.#pathRttAt.set(host, now);
    const seen = new Set<string>();
    let taken = 0;
    for (const [peer, rttMs] of paths) {
      const why = this.#pathRttRefusal(host, peer, rttMs, seen);
      seen.add(peer);
      if (why) this.pathRttRefused[why]++;
      else if (this.book.observeRtt(host, peer, rttMs, now, "fast-path")) taken++;
    }
    return taken;
  }

  #pathRttRefusal(
    host: string,
    peer: string,
    rttMs: number,
    seen: ReadonlySet<string>,
  ): PathRttRefusal | null {
    if (peer === host) return "own name";
    if (seen.has(peer)) return "duplicate peer";
    if (!(Number.isFinite(rttMs) && rttMs >= 0 && rttMs <= MAX_RTT_MS)) return "rtt out of range";
    return this.#sources.direct(hostPair(host, peer)) ? null : "no fast path";
  }

  /**
   * VM traffic summed per host pair (both directions) and per host (its VMs' traffic, either
   * end), leaving out VMs that moved lately.
   */
  #vmTraffic(now: number): { pairs: Map<HostPair, number>; hosts: Map<string, number> } {
    const pairs = new Map<HostPair, number>();
    const hosts = new Map<string, number>();
    // Each VM looked up once per sample, however many entries name it.
    const seen = new Map<string, { host: string; since: number } | null>();
    const vm = (mac: string) => {
      let v = seen.get(mac);
      if (v === undefined) seen.set(mac, v = this.#sources.vm(mac));
      return v;
    };
    for (const e of this.#sources.matrix()) {
      const a = vm(e.src);
      const b = vm(e.dst);
      if (!a || !b) continue;
      if (now - a.since < this.#settleMs || now - b.since < this.#settleMs) continue;
      hosts.set(a.host, (hosts.get(a.host) ?? 0) + e.bytesPerSec);
      if (a.host === b.host) continue;
      hosts.set(b.host, (hosts.get(b.host) ?? 0) + e.bytesPerSec);
      const pair = hostPair(a.host, b.host);
      pairs.set(pair, (pairs.get(pair) ?? 0) + e.bytesPerSec);
    }
    return { pairs, hosts };
  }

  /**
   * Per host pair what the planner should take at `now`: the larger of the pair's own
   * bandwidth (fresh) and its star path's; null when neither is known. The RTT is the pair's
   * own while its fast path is up and its hosts reported one lately (that is the path its
   * traffic takes), else its star path's. `hosts` are the hosts to price (the connected ones).
   */
  plannedPaths(hosts: Iterable<string>, now: number): PlannedPathView[] {
    const names = [...new Set(hosts)].sort();
    const price = this.#pricer(now);
    const out: PlannedPathView[] = [];
    for (let i = 0; i < names.length; i++) {
      for (let j = i + 1; j < names.length; j++) out.push(price(names[i], names[j]));
    }
    return out;
  }

  /** Prices one host pair at a time, each star link's estimate read once. */
  #pricer(now: number): (a: string, b: string) => PlannedPathView {
    return pairPricer({
      estimate: (a, b) => this.book.estimate(a, b, now),
      star: STAR,
      direct: (pair) => this.#sources.direct(pair),
      maxAgeMs: this.#maxAgeMs,
      proxy: { bytesPerSec: this.#proxyRate, bestBytesPerSec: this.#proxyBest },
    });
  }

  /** The pricing function the placement planner takes (see {@linkcode plannedPaths}). */
  pathCosts(hosts: Iterable<string>, now: number): (pair: HostPair) => PathEstimate | null {
    // Priced when the planner asks, once per pair: pricing every pair up front was O(hosts²)
    // on every plan and every /metrics (9 million pairs, seconds, at 3,000 hosts).
    const known = new Set(hosts);
    const price = this.#pricer(now);
    const m = new Map<HostPair, PathEstimate | null>();
    return (pair) => {
      let p = m.get(pair);
      if (p !== undefined) return p;
      const [a, b] = splitPair(pair);
      const v = known.has(a) && known.has(b) && a !== b ? price(a, b) : null;
      p = v?.bandwidthBytesPerSec != null
        ? { bandwidthBytesPerSec: v.bandwidthBytesPerSec, rttMs: v.rttMs ?? 0 }
        : null;
      m.set(pair, p);
      return p;
    };
  }

  /** Everything known, for the API, the CLI and the page. */
  view(hosts: Iterable<string>, now: number): UnderlayView {
    const names = [...hosts];
    const estimates = this.book.estimates(now);
    const pairs = estimates.map((e): UnderlayPairView => ({
      ...e,
      kind: e.pair.startsWith(`${STAR}|`) ? "star link" : "host pair",
    }));
    const partial = names.length > FULL_VIEW_HOSTS;
    return {
      updatedAt: this.#updatedAt,
      pairs,
      planned: partial ? this.#pricedPairs(names, estimates, now) : this.plannedPaths(names, now),
      unmeasured: partial ? [] : this.book.pairsNeedingProbe(names, now, {
        staleMs: this.#maxAgeMs,
        maxProbes: 10_000,
      }),
      partial,
      proxy: { bytesPerSec: this.#proxyRate, bestBytesPerSec: this.#proxyBest },
      refused: { ...this.book.refused },
      pathRttRefused: { ...this.pathRttRefused },
      probes: this.probes.counts(),
    };
  }

  /** The pairs of connected hosts that were measured or carry VM traffic, priced. */
  #pricedPairs(names: string[], measured: UnderlayEstimate[], now: number): PlannedPathView[] {
    const connected = new Set(names);
    const wanted = new Set<HostPair>(this.#vmTraffic(now).pairs.keys());
    for (const e of measured) if (!e.pair.startsWith(`${STAR}|`)) wanted.add(e.pair);
    const price = this.#pricer(now);
    return [...wanted].sort().map((pair) => splitPair(pair))
      .filter(([a, b]) => connected.has(a) && connected.has(b))
      .map(([a, b]) => price(a, b));
  }

  /** Samples every interval on `clock` until `signal` aborts. */
  run(signal: AbortSignal, clock: Clock = systemClock): Promise<void> {
    return new Promise((resolve) => {
      const t = clock.every(this.#intervalMs, () => this.sample(clock.now()));
      signal.addEventListener("abort", () => {
        t.cancel();
        resolve();
      }, { once: true });
    });
  }
}
