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
 *       -> pathCosts(now): per host pair the better of what the pair itself carried and the
 *          star path (the smaller bandwidth of its two star links, the sum of their RTTs);
 *          the RTT of a direct path is not measured here (see below), so the star's is used
 *       -> view(now): every pair, what the planner takes for it, and where the bottleneck is
 *
 * Why no active probe: the star's keepalives already give every star link an RTT every
 * second, so the star path of every host pair is always priced; what a probe could add is
 * bandwidth, and a probe light enough to be harmless measures no bandwidth (a bandwidth probe
 * must fill the path). Host pairs that never carried traffic stay priced as their star path,
 * a lower bound; `unmeasured` lists them. The direct path's RTT would need the hosts to report
 * their fast paths' keepalive RTT, which no message carries yet.
 *
 * @module
 */

import { type Clock, systemClock } from "../agent/clock.ts";
import type { PathEstimate } from "../adapt/placement.ts";
import { type HostPair, hostPair, splitPair } from "../adapt/planner.ts";
import { UnderlayBook, type UnderlayEstimate, type UnderlayRefusal } from "../adapt/underlay.ts";

/** The proxy's end of every star link, as the underlay book names it (no host can be named so). */
export const STAR = "(proxy)";

/** Samples below this rate say nothing about a path (keepalives, ARP). */
export const MIN_SAMPLE_BYTES_PER_SEC = 1000;

/** What the underlay service reads of the proxy. */
export interface UnderlaySources {
  /** Connected hosts' star links: the keepalive RTT and the bytes sent and received so far. */
  starLinks(): Iterable<[string, { rttMs: number | null; txBytes: number; rxBytes: number }]>;
  /** VTTIF's smoothed VM matrix (directed entries, bytes/s). */
  matrix(): Iterable<{ src: string; dst: string; bytesPerSec: number }>;
  /** VM MAC -> its host and since when it is there (ms). */
  vms(): ReadonlyMap<string, { host: string; since: number }>;
  /** Whether the fast path of `pair` is up. */
  direct(pair: HostPair): boolean;
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
}

/** One pair as `GET /api/underlay` shows it. */
export interface UnderlayPairView extends UnderlayEstimate {
  /** A star link (proxy <-> host) or a host pair. */
  kind: "star link" | "host pair";
}

/** What the planner takes for one host pair, and why. */
export interface PlannedPathView {
  pair: HostPair;
  bandwidthBytesPerSec: number | null;
  rttMs: number | null;
  /** Which measurement the bandwidth comes from. */
  via: "pair" | "star" | "unknown";
  /** Where the path is narrowest, in words. */
  bottleneck: string;
}

/** `GET /api/underlay`. */
export interface UnderlayView {
  updatedAt: number;
  pairs: UnderlayPairView[];
  planned: PlannedPathView[];
  /** Connected host pairs that carried nothing lately: priced as their star path. */
  unmeasured: HostPair[];
  /** Bytes/s through the proxy's star links together: last interval, and the most seen. */
  proxy: { bytesPerSec: number; bestBytesPerSec: number };
  refused: Record<UnderlayRefusal, number>;
}

/** Feeds the underlay book from the proxy and prices host pairs for placement. */
export class UnderlayService {
  readonly book: UnderlayBook;
  readonly #sources: UnderlaySources;
  readonly #maxAgeMs: number;
  readonly #settleMs: number;
  readonly #intervalMs: number;
  readonly #last = new Map<string, { tx: number; rx: number; at: number }>();
  #updatedAt = 0;
  #proxyRate = 0;
  #proxyBest = 0;

  constructor(sources: UnderlaySources, options: UnderlayServiceOptions = {}) {
    this.#sources = sources;
    this.book = new UnderlayBook({ windowMs: options.windowMs });
    this.#maxAgeMs = options.maxAgeMs ?? 300_000;
    this.#settleMs = options.settleMs ?? 15_000;
    this.#intervalMs = options.intervalMs ?? 1000;
  }

  /** Takes one round of samples at `now` (ms since epoch). */
  sample(now: number): void {
    this.#updatedAt = now;
    const seen = new Set<string>();
    let total = 0;
    for (const [host, link] of this.#sources.starLinks()) {
      seen.add(host);
      if (link.rttMs !== null) this.book.observeRtt(STAR, host, link.rttMs, now, "keepalive");
      const prev = this.#last.get(host);
      this.#last.set(host, { tx: link.txBytes, rx: link.rxBytes, at: now });
      // A replaced link starts its counters afresh: no sample across it.
      if (!prev || now <= prev.at || link.txBytes < prev.tx || link.rxBytes < prev.rx) continue;
      const rate = (link.txBytes - prev.tx + link.rxBytes - prev.rx) * 1000 / (now - prev.at);
      total += rate;
      if (rate >= MIN_SAMPLE_BYTES_PER_SEC) {
        this.book.observeThroughput(STAR, host, rate, now, "star");
      }
    }
    for (const host of this.#last.keys()) if (!seen.has(host)) this.#last.delete(host);
    this.#proxyRate = total;
    this.#proxyBest = Math.max(this.#proxyBest, total);
    for (const [pair, rate] of this.#hostPairRates(now)) {
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
  }

  /** VM traffic summed per host pair (both directions), leaving out VMs that moved lately. */
  #hostPairRates(now: number): Map<HostPair, number> {
    const vms = this.#sources.vms();
    const out = new Map<HostPair, number>();
    for (const e of this.#sources.matrix()) {
      const a = vms.get(e.src);
      const b = vms.get(e.dst);
      if (!a || !b || a.host === b.host) continue;
      if (now - a.since < this.#settleMs || now - b.since < this.#settleMs) continue;
      const pair = hostPair(a.host, b.host);
      out.set(pair, (out.get(pair) ?? 0) + e.bytesPerSec);
    }
    return out;
  }

  /**
   * Per host pair what the planner should take at `now`: the larger of the pair's own
   * bandwidth (fresh) and its star path's; null when neither is known. `hosts` are the hosts
   * to price (the connected ones).
   */
  plannedPaths(hosts: Iterable<string>, now: number): PlannedPathView[] {
    const names = [...new Set(hosts)].sort();
    const fresh = (e: UnderlayEstimate | null) =>
      e?.bandwidthBytesPerSec != null && e.bandwidthAgeMs !== null &&
        e.bandwidthAgeMs <= this.#maxAgeMs
        ? e.bandwidthBytesPerSec
        : null;
    const star = new Map(names.map((h) => [h, this.book.estimate(STAR, h, now)]));
    const out: PlannedPathView[] = [];
    for (let i = 0; i < names.length; i++) {
      for (let j = i + 1; j < names.length; j++) {
        const [a, b] = [names[i], names[j]];
        const pair = hostPair(a, b);
        const own = fresh(this.book.estimate(a, b, now));
        const [sa, sb] = [star.get(a)!, star.get(b)!];
        const [ba, bb] = [fresh(sa), fresh(sb)];
        const starBw = ba !== null && bb !== null ? Math.min(ba, bb) : null;
        const rttMs = sa?.rttMs != null && sb?.rttMs != null ? sa.rttMs + sb.rttMs : null;
        const narrow = ba !== null && bb !== null && ba > bb ? b : a;
        if (own === null && starBw === null) {
          out.push({ pair, bandwidthBytesPerSec: null, rttMs, via: "unknown", bottleneck: "-" });
        } else if (starBw === null || (own !== null && own >= starBw)) {
          const how = this.#sources.direct(pair) ? "its fast path" : "its traffic so far";
          out.push({ pair, bandwidthBytesPerSec: own, rttMs, via: "pair", bottleneck: how });
        } else {
          const bottleneck = this.#proxyRate >= 0.8 * this.#proxyBest && this.#proxyBest > 0
            ? `the proxy (star links at ${Math.round(100 * this.#proxyRate / this.#proxyBest)}% ` +
              `of their best together)`
            : `star link of ${narrow}`;
          out.push({ pair, bandwidthBytesPerSec: starBw, rttMs, via: "star", bottleneck });
        }
      }
    }
    return out;
  }

  /** The pricing function the placement planner takes (see {@linkcode plannedPaths}). */
  pathCosts(hosts: Iterable<string>, now: number): (pair: HostPair) => PathEstimate | null {
    const m = new Map<HostPair, PathEstimate>();
    for (const p of this.plannedPaths(hosts, now)) {
      if (p.bandwidthBytesPerSec === null) continue;
      m.set(p.pair, { bandwidthBytesPerSec: p.bandwidthBytesPerSec, rttMs: p.rttMs ?? 0 });
    }
    return (pair) => m.get(pair) ?? null;
  }

  /** Everything known, for the API, the CLI and the page. */
  view(hosts: Iterable<string>, now: number): UnderlayView {
    const names = [...hosts];
    const pairs = this.book.estimates(now).map((e): UnderlayPairView => ({
      ...e,
      kind: e.pair.startsWith(`${STAR}|`) ? "star link" : "host pair",
    }));
    return {
      updatedAt: this.#updatedAt,
      pairs,
      planned: this.plannedPaths(names, now),
      unmeasured: this.book.pairsNeedingProbe(names, now, {
        staleMs: this.#maxAgeMs,
        maxProbes: 10_000,
      }),
      proxy: { bytesPerSec: this.#proxyRate, bestBytesPerSec: this.#proxyBest },
      refused: { ...this.book.refused },
    };
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
