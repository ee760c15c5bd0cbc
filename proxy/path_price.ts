/**
 * How the placement planner prices one host pair, from the underlay book: the larger of the
 * pair's own achieved bandwidth (while fresh) and its star path's (the narrower of its two
 * star links); its RTT is its fast path's while that is up and reported lately, else a fresh
 * active probe's (proxy/underlay_probes.ts: the direct path timed by one of the two hosts),
 * else its two star links' summed. Pure: estimates in, one price out, so callers price only the pairs they
 * need (every pair of 10,000 hosts is 50 million).
 *
 * @module
 */

import { type HostPair, hostPair } from "../adapt/planner.ts";
import type { UnderlayEstimate } from "../adapt/underlay.ts";

/** What the planner takes for one host pair, and why. */
export interface PlannedPathView {
  pair: HostPair;
  bandwidthBytesPerSec: number | null;
  rttMs: number | null;
  /** Which measurement the bandwidth comes from. */
  via: "pair" | "star" | "unknown";
  /**
   * Which measurement the RTT comes from: the pair's fast path (its keepalives, reported by
   * its hosts), an active probe of the direct path (no fast path up), or the sum of its two
   * star links'.
   */
  rttVia: "fast-path" | "probe" | "star" | "unknown";
  /** Where the path is narrowest, in words. */
  bottleneck: string;
}

/** What pricing reads. */
export interface PriceInputs {
  /** The book's estimate of a pair (`star` as one end: a star link) at the pricing time. */
  estimate(a: string, b: string): UnderlayEstimate | null;
  /** The name the book gives the proxy's end of star links. */
  star: string;
  /** Whether the pair has a fast path up. */
  direct(pair: HostPair): boolean;
  /** Measurements older than this are not taken. */
  maxAgeMs: number;
  /** Bytes/s through the proxy's star links together: last interval, and the most seen. */
  proxy: { bytesPerSec: number; bestBytesPerSec: number };
}

/** Prices host pairs one at a time, each star link's estimate read once. */
export function pairPricer(inp: PriceInputs): (a: string, b: string) => PlannedPathView {
  const fresh = (e: UnderlayEstimate | null) =>
    e?.bandwidthBytesPerSec != null && e.bandwidthAgeMs !== null &&
      e.bandwidthAgeMs <= inp.maxAgeMs
      ? e.bandwidthBytesPerSec
      : null;
  const stars = new Map<string, UnderlayEstimate | null>();
  const star = (h: string) => {
    if (!stars.has(h)) stars.set(h, inp.estimate(inp.star, h));
    return stars.get(h)!;
  };
  const { bytesPerSec, bestBytesPerSec } = inp.proxy;
  return (a, b) => {
    const pair = hostPair(a, b);
    const estimate = inp.estimate(a, b);
    const own = fresh(estimate);
    const [sa, sb] = [star(a), star(b)];
    const [ba, bb] = [fresh(sa), fresh(sb)];
    const starBw = ba !== null && bb !== null ? Math.min(ba, bb) : null;
    const rtt = pairRtt(inp, pair, estimate, [sa, sb]);
    const narrow = ba !== null && bb !== null && ba > bb ? b : a;
    if (own === null && starBw === null) {
      return { pair, bandwidthBytesPerSec: null, ...rtt, via: "unknown", bottleneck: "-" };
    }
    if (starBw === null || (own !== null && own >= starBw)) {
      const how = inp.direct(pair) ? "its fast path" : "its traffic so far";
      return { pair, bandwidthBytesPerSec: own, ...rtt, via: "pair", bottleneck: how };
    }
    const bottleneck = bytesPerSec >= 0.8 * bestBytesPerSec && bestBytesPerSec > 0
      ? `the proxy (star links at ${Math.round(100 * bytesPerSec / bestBytesPerSec)}% ` +
        `of their best together)`
      : `star link of ${narrow}`;
    return { pair, bandwidthBytesPerSec: starBw, ...rtt, via: "star", bottleneck };
  };
}

/**
 * A host pair's RTT: its fast path's, reported by its hosts, while that path is up and the
 * report is fresh; else a fresh probe's, whose newest round trip the pair's own hosts timed
 * directly (two hosts on one site behind a far proxy are near each other, which the star sum
 * cannot say); else the sum of its two star links' RTTs; else unknown.
 */
function pairRtt(
  inp: PriceInputs,
  pair: HostPair,
  own: UnderlayEstimate | null,
  [sa, sb]: (UnderlayEstimate | null)[],
): Pick<PlannedPathView, "rttMs" | "rttVia"> {
  if (own?.rttMs != null && own.rttAgeMs !== null && own.rttAgeMs <= inp.maxAgeMs) {
    if (inp.direct(pair)) return { rttMs: own.rttMs, rttVia: "fast-path" };
    // No fast path: a probe timed the direct path; an older fast path's RTT is not taken.
    if (own.rttSource === "probe") return { rttMs: own.rttMs, rttVia: "probe" };
  }
  if (sa?.rttMs != null && sb?.rttMs != null) {
    return { rttMs: sa.rttMs + sb.rttMs, rttVia: "star" };
  }
  return { rttMs: null, rttVia: "unknown" };
}
