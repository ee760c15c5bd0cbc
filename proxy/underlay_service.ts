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
 *       -> pathCosts(now): per host pair the better of what the pair itself carried and the
 *          star path (the smaller bandwidth of its two star links); the RTT is the pair's own
 *          while its fast path is up and reported lately, else the sum of its star links'
 *       -> view(now): every pair, what the planner takes for it, and where the bottleneck is
 *
 * Why no active probe: the star's keepalives already give every star link an RTT every
 * second, and the fast paths' keepalives the direct path's, so every host pair has an RTT;
 * what a probe could add is bandwidth, and a probe light enough to be harmless measures no
 * bandwidth (a bandwidth probe must fill the path). Host pairs that never carried traffic stay
 * priced as their star path, a lower bound; `unmeasured` lists them.
 *
 * @module
 */

import { type Clock, systemClock } from "../agent/clock.ts";
import type { PathEstimate } from "../adapt/placement.ts";
import { type HostPair, hostPair, splitPair } from "../adapt/planner.ts";
import {
  MAX_RTT_MS,
  UnderlayBook,
  type UnderlayEstimate,
  type UnderlayRefusal,
} from "../adapt/underlay.ts";

/** The proxy's end of every star link, as the underlay book names it (no host can be named so). */
export const STAR = "(proxy)";

/** Samples below this rate say nothing about a path (keepalives, ARP). */
export const MIN_SAMPLE_BYTES_PER_SEC = 1000;

/**
 * path-rtt reports from one host closer together than this are refused: a host checks every
 * 2 s (agent/traffic/path_rtt.ts), and one that floods would outweigh the book's smoothing.
 */
export const MIN_PATH_RTT_GAP_MS = 500;

/** Why an entry of a host's path-rtt report was not taken. */
export type PathRttRefusal =
  | "no fast path"
  | "own name"
  | "duplicate peer"
  | "rtt out of range"
  | "too often";

const PATH_RTT_REFUSALS: readonly PathRttRefusal[] = [
  "no fast path",
  "own name",
  "duplicate peer",
  "rtt out of range",
  "too often",
];

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
  /**
   * Which measurement the RTT comes from: the pair's fast path (its keepalives, reported by
   * its hosts) or the sum of its two star links'.
   */
  rttVia: "fast-path" | "star" | "unknown";
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
  /** Entries of hosts' path-rtt reports refused, by reason. */
  pathRttRefused: Record<PathRttRefusal, number>;
}

/** Feeds the underlay book from the proxy and prices host pairs for placement. */
export class UnderlayService {
  readonly book: UnderlayBook;
  readonly #sources: UnderlaySources;
  readonly #maxAgeMs: number;
  readonly #settleMs: number;
  readonly #intervalMs: number;
  readonly #last = new Map<string, { tx: number; rx: number; at: number }>();
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
    for (const host of this.#pathRttAt.keys()) if (!seen.has(host)) this.#pathRttAt.delete(host);
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
   *   starLinks: () => [], matrix: () => [], vms: () => new Map(),
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
   * bandwidth (fresh) and its star path's; null when neither is known. The RTT is the pair's
   * own while its fast path is up and its hosts reported one lately (that is the path its
   * traffic takes), else its star path's. `hosts` are the hosts to price (the connected ones).
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
        const estimate = this.book.estimate(a, b, now);
        const own = fresh(estimate);
        const [sa, sb] = [star.get(a)!, star.get(b)!];
        const [ba, bb] = [fresh(sa), fresh(sb)];
        const starBw = ba !== null && bb !== null ? Math.min(ba, bb) : null;
        const rtt = this.#rttOf(pair, estimate, [sa, sb]);
        const narrow = ba !== null && bb !== null && ba > bb ? b : a;
        if (own === null && starBw === null) {
          out.push({ pair, bandwidthBytesPerSec: null, ...rtt, via: "unknown", bottleneck: "-" });
        } else if (starBw === null || (own !== null && own >= starBw)) {
          const how = this.#sources.direct(pair) ? "its fast path" : "its traffic so far";
          out.push({ pair, bandwidthBytesPerSec: own, ...rtt, via: "pair", bottleneck: how });
        } else {
          const bottleneck = this.#proxyRate >= 0.8 * this.#proxyBest && this.#proxyBest > 0
            ? `the proxy (star links at ${Math.round(100 * this.#proxyRate / this.#proxyBest)}% ` +
              `of their best together)`
            : `star link of ${narrow}`;
          out.push({ pair, bandwidthBytesPerSec: starBw, ...rtt, via: "star", bottleneck });
        }
      }
    }
    return out;
  }

  /**
   * A host pair's RTT: its fast path's, reported by its hosts, while that path is up and the
   * report is fresh; else the sum of its two star links' RTTs; else unknown.
   */
  #rttOf(
    pair: HostPair,
    own: UnderlayEstimate | null,
    [sa, sb]: (UnderlayEstimate | null)[],
  ): Pick<PlannedPathView, "rttMs" | "rttVia"> {
    if (
      own?.rttMs != null && own.rttAgeMs !== null && own.rttAgeMs <= this.#maxAgeMs &&
      this.#sources.direct(pair)
    ) {
      return { rttMs: own.rttMs, rttVia: "fast-path" };
    }
    if (sa?.rttMs != null && sb?.rttMs != null) {
      return { rttMs: sa.rttMs + sb.rttMs, rttVia: "star" };
    }
    return { rttMs: null, rttVia: "unknown" };
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
      pathRttRefused: { ...this.pathRttRefused },
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
