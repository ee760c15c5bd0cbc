/**
 * What the overlay knows about the underlay, per host pair: how long a round trip takes and
 * how much the path has been seen to carry. Learned passively from what the overlay already
 * carries (keepalive round trips, bytes moved over fast paths and star links), with a light
 * active probe only for pairs nothing has measured lately.
 *
 *     sample (pair, value, now, source)
 *       -> refused? (bad pair, bad time, time went backwards, bad source, value out of range)
 *          counted by reason
 *       -> RTT: EWMA (gain 1/8, as TCP's SRTT) and min of the last one to two windows
 *          throughput: EWMA (gain 1/4) and max of the last one to two windows (the path's
 *          best demonstrated rate)
 *       -> pair moved to the young end; beyond maxPairs the least recently measured goes
 *       -> estimate(a, b, now) / pathCosts(now) for the placement planner
 *       -> pairsNeedingProbe(hosts, now): no bandwidth sample for staleMs, not probed lately
 *
 * Achieved throughput is what traffic demanded, not what the path could carry: an idle path
 * measures nothing, so a sample of 0 bytes/s is refused, and the planner's bandwidth is the
 * largest rate seen in the last one to two windows, a lower bound of the path's capacity.
 *
 * No clock, no I/O: `now` (ms) comes in with every call.
 *
 * @module
 */

import { type HostPair, hostPair } from "./planner.ts";
import type { PathEstimate } from "./placement.ts";
import { WindowExtreme } from "./underlay_window.ts";

/** Where a sample came from. */
export type UnderlaySource = "keepalive" | "fast-path" | "star" | "probe";

/** Why a sample was not taken. */
export type UnderlayRefusal =
  | "bad host pair"
  | "bad time"
  | "time went backwards"
  | "bad source"
  | "rtt out of range"
  | "throughput out of range";

/** The longest round trip taken as a measurement (ms); beyond it the path is down, not slow. */
export const MAX_RTT_MS = 60_000;

/** The fastest any host link is taken to be: 100 Gbit/s, in bytes/s. */
export const MAX_BYTES_PER_SEC = 100e9 / 8;

const SOURCES: ReadonlySet<string> = new Set(["keepalive", "fast-path", "star", "probe"]);

/** Tuning of an {@linkcode UnderlayBook}; every field has a default. */
export interface UnderlayOptions {
  /** Host pairs remembered; beyond it the least recently measured is forgotten. Default 16384. */
  maxPairs?: number;
  /** The window of the min RTT and the max throughput (ms), on its multiples. Default 60 s. */
  windowMs?: number;
}

/** What is known about one host pair at `now`. */
export interface UnderlayEstimate {
  pair: HostPair;
  /** Smoothed round trip (EWMA), ms; null when never measured. */
  rttMs: number | null;
  /** Smallest round trip of the last one to two windows, ms: the path without queueing. */
  rttMinMs: number | null;
  /** Since the newest round-trip sample, ms; null: none yet. */
  rttAgeMs: number | null;
  /** Largest achieved throughput of the last one to two windows, bytes/s; null: none yet. */
  bandwidthBytesPerSec: number | null;
  /** Smoothed achieved throughput (EWMA), bytes/s; null: none yet. */
  throughputBytesPerSec: number | null;
  /** Since the newest sample of either kind, ms. */
  ageMs: number;
  /** Since the newest throughput sample, ms; null: none yet. */
  bandwidthAgeMs: number | null;
  /** The source of the newest sample. */
  source: UnderlaySource;
  /** The source of the newest round-trip sample (pricing tells a probe from a fast path). */
  rttSource: UnderlaySource | null;
}

interface PairRecord {
  rtt: { ewma: number; min: WindowExtreme; at: number; source: UnderlaySource } | null;
  throughput: { ewma: number; max: WindowExtreme; at: number } | null;
  /** The newest accepted sample, ms; -Infinity when only a probe was sent. */
  measuredAt: number;
  source: UnderlaySource;
  probedAt: number | null;
}

const RTT_GAIN = 1 / 8;
const THROUGHPUT_GAIN = 1 / 4;

/** Per-host-pair underlay knowledge, bounded in size; one per proxy. */
export class UnderlayBook {
  readonly #maxPairs: number;
  readonly #windowMs: number;
  /** Insertion order is measurement order: the first key is the least recently measured. */
  readonly #pairs = new Map<HostPair, PairRecord>();
  /** Samples refused, by reason. */
  readonly refused: Record<UnderlayRefusal, number> = {
    "bad host pair": 0,
    "bad time": 0,
    "time went backwards": 0,
    "bad source": 0,
    "rtt out of range": 0,
    "throughput out of range": 0,
  };
  /** Pairs forgotten to stay within maxPairs. */
  evicted = 0;

  /**
   * @throws {RangeError} when an option is out of range (the option is named)
   */
  constructor(options: UnderlayOptions = {}) {
    const maxPairs = options.maxPairs ?? 16_384;
    const windowMs = options.windowMs ?? 60_000;
    if (!(Number.isInteger(maxPairs) && maxPairs >= 1)) {
      throw new RangeError(
        `Cannot create an underlay book: maxPairs must be an integer >= 1, got ${maxPairs}`,
      );
    }
    if (!(Number.isFinite(windowMs) && windowMs > 0)) {
      throw new RangeError(
        `Cannot create an underlay book: windowMs must be a finite number > 0, got ${windowMs}`,
      );
    }
    this.#maxPairs = maxPairs;
    this.#windowMs = windowMs;
  }

  /** Host pairs remembered now. */
  get size(): number {
    return this.#pairs.size;
  }

  /**
   * Takes one round-trip sample of the path between hosts `a` and `b`.
   *
   * @returns false when the sample was refused (and counted in `refused`)
   * @example
   * ```ts
   * import { UnderlayBook } from "./underlay.ts";
   * const book = new UnderlayBook();
   * book.observeRtt("h1", "h2", 20, 1000, "keepalive");
   * book.observeRtt("h2", "h1", 12, 2000, "keepalive");
   * if (book.observeRtt("h1", "h2", -1, 3000, "keepalive")) throw new Error("refused");
   * const e = book.estimate("h1", "h2", 2500)!;
   * if (e.rttMs !== 19 || e.rttMinMs !== 12 || e.ageMs !== 500) throw new Error("EWMA 1/8, min");
   * if (book.refused["rtt out of range"] !== 1) throw new Error("counted");
   * ```
   */
  observeRtt(a: string, b: string, ms: number, now: number, source: UnderlaySource): boolean {
    if (!(Number.isFinite(ms) && ms >= 0 && ms <= MAX_RTT_MS)) {
      this.#refuse("rtt out of range");
      return false;
    }
    const r = this.#recordFor(a, b, now, source);
    if (!r) return false;
    if (r.rtt === null) {
      r.rtt = { ewma: ms, min: this.#window(ms, now, "min"), at: now, source };
    } else {
      r.rtt.ewma += RTT_GAIN * (ms - r.rtt.ewma);
      r.rtt.at = now;
      r.rtt.source = source;
      r.rtt.min.push(ms, now);
    }
    return true;
  }

  /**
   * Takes one achieved-throughput sample (bytes/s moved between `a` and `b` over an interval
   * that carried traffic). 0 is refused: an idle interval says nothing about the path.
   *
   * @returns false when the sample was refused (and counted in `refused`)
   * @example
   * ```ts
   * import { UnderlayBook } from "./underlay.ts";
   * const book = new UnderlayBook({ windowMs: 10_000 });
   * book.observeThroughput("h1", "h2", 8e6, 0, "fast-path");
   * book.observeThroughput("h1", "h2", 4e6, 1000, "fast-path");
   * let e = book.estimate("h1", "h2", 1000)!;
   * if (e.bandwidthBytesPerSec !== 8e6 || e.throughputBytesPerSec !== 7e6) throw new Error();
   * // Two windows later the 8 MB/s burst has aged out of the max.
   * book.observeThroughput("h1", "h2", 3e6, 10_000, "star");
   * book.observeThroughput("h1", "h2", 2e6, 20_000, "star");
   * e = book.estimate("h1", "h2", 20_000)!;
   * if (e.bandwidthBytesPerSec !== 3e6 || e.source !== "star") throw new Error("aged out");
   * ```
   */
  observeThroughput(
    a: string,
    b: string,
    bytesPerSec: number,
    now: number,
    source: UnderlaySource,
  ): boolean {
    if (!(Number.isFinite(bytesPerSec) && bytesPerSec > 0 && bytesPerSec <= MAX_BYTES_PER_SEC)) {
      this.#refuse("throughput out of range");
      return false;
    }
    const r = this.#recordFor(a, b, now, source);
    if (!r) return false;
    if (r.throughput === null) {
      r.throughput = { ewma: bytesPerSec, max: this.#window(bytesPerSec, now, "max"), at: now };
    } else {
      r.throughput.ewma += THROUGHPUT_GAIN * (bytesPerSec - r.throughput.ewma);
      r.throughput.at = now;
      r.throughput.max.push(bytesPerSec, now);
    }
    return true;
  }

  /**
   * Notes that a probe of `a`-`b` was sent at `now`, so that {@linkcode pairsNeedingProbe}
   * does not ask for it again within `staleMs` even if the probe never answers.
   *
   * @throws {RangeError} when the pair or the time is bad (a caller bug, not a peer's)
   */
  probeSent(a: string, b: string, now: number): void {
    if (!Number.isFinite(now)) throw new RangeError(`Cannot note a probe: bad time ${now}`);
    const pair = hostPair(a, b);
    let r = this.#pairs.get(pair);
    if (!r) {
      r = { rtt: null, throughput: null, measuredAt: -Infinity, source: "probe", probedAt: null };
      this.#insert(pair, r);
    }
    r.probedAt = now;
  }

  /**
   * What is known about the pair at `now`, or null when nothing was ever measured.
   *
   * @example
   * ```ts
   * import { UnderlayBook } from "./underlay.ts";
   * const book = new UnderlayBook();
   * if (book.estimate("h1", "h2", 0) !== null) throw new Error("nothing yet");
   * book.observeRtt("h1", "h2", 5, 0, "keepalive");
   * const e = book.estimate("h2", "h1", 100)!;
   * if (e.pair !== "h1|h2" || e.bandwidthBytesPerSec !== null) throw new Error("RTT only");
   * ```
   */
  estimate(a: string, b: string, now: number): UnderlayEstimate | null {
    const pair = hostPair(a, b);
    const r = this.#pairs.get(pair);
    return r ? this.#estimateOf(pair, r, now) : null;
  }

  /** Every measured pair, sorted by pair, for `agent underlay`, the API and the page. */
  estimates(now: number): UnderlayEstimate[] {
    const out: UnderlayEstimate[] = [];
    for (const [pair, r] of this.#pairs) {
      const e = this.#estimateOf(pair, r, now);
      if (e) out.push(e);
    }
    return out.sort((x, y) => (x.pair < y.pair ? -1 : x.pair > y.pair ? 1 : 0));
  }

  /**
   * The underlay as the placement planner prices it: pairs with both a bandwidth and an RTT
   * whose throughput sample is at most `maxAgeMs` old; any other pair is unknown (null).
   *
   * @example
   * ```ts
   * import { UnderlayBook } from "./underlay.ts";
   * const book = new UnderlayBook();
   * book.observeRtt("h1", "h2", 2, 0, "keepalive");
   * book.observeThroughput("h1", "h2", 1e8, 0, "fast-path");
   * const costs = book.pathCosts(30_000, { maxAgeMs: 60_000 });
   * if (costs("h1|h2")?.bandwidthBytesPerSec !== 1e8 || costs("h1|h3") !== null) throw new Error();
   * ```
   */
  pathCosts(now: number, options: { maxAgeMs: number }): (pair: HostPair) => PathEstimate | null {
    const snapshot = new Map<HostPair, PathEstimate>();
    for (const e of this.estimates(now)) {
      if (e.bandwidthBytesPerSec === null || e.rttMs === null) continue;
      if (e.bandwidthAgeMs === null || e.bandwidthAgeMs > options.maxAgeMs) continue;
      snapshot.set(e.pair, { bandwidthBytesPerSec: e.bandwidthBytesPerSec, rttMs: e.rttMs });
    }
    return (pair) => snapshot.get(pair) ?? null;
  }

  /**
   * Pairs among `hosts` to probe now: no throughput sample, or none for `staleMs`, and no probe
   * sent within `staleMs`. Never-measured pairs first, then the stalest; ties by pair name; at
   * most `maxProbes`, which is what bounds the probe rate (one call per probe period).
   *
   * @throws {RangeError} when a host name cannot form a pair
   * @example
   * ```ts
   * import { UnderlayBook } from "./underlay.ts";
   * const book = new UnderlayBook();
   * book.observeThroughput("h1", "h2", 1e6, 0, "star");
   * book.observeThroughput("h1", "h3", 1e6, 50_000, "star");
   * const options = { staleMs: 60_000, maxProbes: 2 };
   * const due = book.pairsNeedingProbe(["h1", "h2", "h3"], 70_000, options);
   * if (due.join() !== "h2|h3,h1|h2") throw new Error(due.join());
   * ```
   */
  pairsNeedingProbe(
    hosts: Iterable<string>,
    now: number,
    options: { staleMs: number; maxProbes: number },
  ): HostPair[] {
    const names = [...new Set(hosts)].sort();
    const due: { pair: HostPair; at: number }[] = [];
    for (let i = 0; i < names.length; i++) {
      for (let j = i + 1; j < names.length; j++) {
        const pair = hostPair(names[i], names[j]);
        const r = this.#pairs.get(pair);
        const probedAt = r?.probedAt ?? null;
        if (probedAt !== null && now - probedAt < options.staleMs) continue;
        const at = r?.throughput?.at ?? -Infinity;
        if (now - at >= options.staleMs) due.push({ pair, at });
      }
    }
    due.sort((x, y) => x.at - y.at || (x.pair < y.pair ? -1 : x.pair > y.pair ? 1 : 0));
    return due.slice(0, Math.max(0, options.maxProbes)).map((d) => d.pair);
  }

  /** The pair's record, made young, or null when the sample is refused. */
  #recordFor(a: string, b: string, now: number, source: UnderlaySource): PairRecord | null {
    if (!SOURCES.has(source)) return this.#refuse("bad source");
    if (!Number.isFinite(now)) return this.#refuse("bad time");
    let pair: HostPair;
    try {
      pair = hostPair(a, b);
    } catch {
      return this.#refuse("bad host pair");
    }
    let r = this.#pairs.get(pair);
    if (r && now < r.measuredAt) return this.#refuse("time went backwards");
    if (r) {
      this.#pairs.delete(pair);
      this.#pairs.set(pair, r);
    } else {
      r = { rtt: null, throughput: null, measuredAt: now, source, probedAt: null };
      this.#insert(pair, r);
    }
    r.measuredAt = now;
    r.source = source;
    return r;
  }

  #insert(pair: HostPair, r: PairRecord): void {
    this.#pairs.set(pair, r);
    while (this.#pairs.size > this.#maxPairs) {
      this.#pairs.delete(this.#pairs.keys().next().value!);
      this.evicted++;
    }
  }

  #refuse(reason: UnderlayRefusal): null {
    this.refused[reason]++;
    return null;
  }

  #window(x: number, now: number, keep: "min" | "max"): WindowExtreme {
    return new WindowExtreme(x, now, { windowMs: this.#windowMs, keep });
  }

  #estimateOf(pair: HostPair, r: PairRecord, now: number): UnderlayEstimate | null {
    if (r.rtt === null && r.throughput === null) return null;
    const t = r.throughput;
    return {
      pair,
      rttMs: r.rtt?.ewma ?? null,
      rttMinMs: r.rtt?.min.value(now) ?? null,
      rttAgeMs: r.rtt ? now - r.rtt.at : null,
      bandwidthBytesPerSec: t?.max.value(now) ?? null,
      throughputBytesPerSec: t?.ewma ?? null,
      ageMs: now - r.measuredAt,
      bandwidthAgeMs: t ? now - t.at : null,
      source: r.source,
      rttSource: r.rtt?.source ?? null,
    };
  }
}
