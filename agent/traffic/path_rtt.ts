/**
 * What a host tells the proxy of its fast paths' round trips, for the proxy's underlay book
 * (the direct path of a host pair, which the star's keepalives cannot time). Nothing new is
 * measured: each fast path's Link already times its keepalives (link.ts); this decides when
 * what they measured is worth a message.
 *
 *     every check: per fast path up, the RTT its keepalives last measured
 *       -> smoothed per peer (EWMA, gain 1/4): one ping's jitter makes no report
 *       -> due: never said for this link, moved by more than max(minChangeMs, changeFraction)
 *          since it was said, or said refreshMs ago (so the proxy knows it still holds)
 *       -> one `path-rtt` with every due peer (at most maxEntries; the rest next check),
 *          or nothing
 *
 * Why not per ping: fast paths ping every 250 ms from both ends, and hosts are many; a stable
 * path costs one small message a minute, a changing one at most one per check.
 *
 * No clock, no I/O: the fast-path manager calls {@linkcode PathRttReport.check} on its timer.
 *
 * @module
 */

import { MAX_PATH_RTT_ENTRIES, type PathRtt } from "../control/host_messages.ts";

/** How often the fast-path manager looks at its links' RTTs (ms). */
export const PATH_RTT_CHECK_MS = 2000;

/** Tuning; every field has a default. */
export interface PathRttOptions {
  /** A change smaller than this (ms) is never worth a report. Default 1 ms. */
  minChangeMs?: number;
  /** A change smaller than this fraction of what was said is not either. Default 0.25. */
  changeFraction?: number;
  /** What was said is said again after this long (ms). Default 60 s. */
  refreshMs?: number;
  /** Entries in one message. Default {@linkcode MAX_PATH_RTT_ENTRIES}. */
  maxEntries?: number;
}

interface PeerRtt {
  smoothedMs: number;
  /** What the proxy was last told, and when; null: not yet. */
  said: { ms: number; at: number } | null;
}

const GAIN = 1 / 4;

/**
 * Decides which fast paths' RTTs to report, and when.
 *
 * @example
 * ```ts
 * import { PathRttReport } from "./path_rtt.ts";
 * const r = new PathRttReport();
 * if (r.check([["h2", 10]], 0)?.paths[0][1] !== 10) throw new Error("a new link is said");
 * if (r.check([["h2", 10.4]], 2000) !== null) throw new Error("jitter is not");
 * if (r.check([["h2", 30]], 4000)?.paths[0][0] !== "h2") throw new Error("a real change is");
 * ```
 */
export class PathRttReport {
  readonly #peers = new Map<string, PeerRtt>();
  readonly #minChangeMs: number;
  readonly #changeFraction: number;
  readonly #refreshMs: number;
  readonly #maxEntries: number;

  constructor(options: PathRttOptions = {}) {
    this.#minChangeMs = options.minChangeMs ?? 1;
    this.#changeFraction = options.changeFraction ?? 0.25;
    this.#refreshMs = options.refreshMs ?? 60_000;
    this.#maxEntries = Math.min(options.maxEntries ?? MAX_PATH_RTT_ENTRIES, MAX_PATH_RTT_ENTRIES);
  }

  /**
   * Takes the fast paths up at `now` with their links' last RTT (null: not measured yet) and
   * returns the message to send, or null when nothing is due. Peers not listed are forgotten:
   * a link that comes back is said anew.
   */
  check(links: Iterable<readonly [string, number | null]>, now: number): PathRtt | null {
    const up = new Set<string>();
    const paths: [string, number][] = [];
    for (const [peer, rttMs] of links) {
      up.add(peer);
      if (rttMs === null || !Number.isFinite(rttMs) || rttMs < 0) continue;
      let p = this.#peers.get(peer);
      if (!p) this.#peers.set(peer, p = { smoothedMs: rttMs, said: null });
      else p.smoothedMs += GAIN * (rttMs - p.smoothedMs);
      if (paths.length < this.#maxEntries && this.#due(p, now)) {
        const ms = Math.round(p.smoothedMs * 1000) / 1000;
        p.said = { ms, at: now };
        paths.push([peer, ms]);
      }
    }
    for (const peer of this.#peers.keys()) if (!up.has(peer)) this.#peers.delete(peer);
    return paths.length > 0 ? { type: "path-rtt", paths } : null;
  }

  /** Makes every path due at the next check (a proxy that just took the host knows none). */
  reset(): void {
    for (const p of this.#peers.values()) p.said = null;
  }

  #due(p: PeerRtt, now: number): boolean {
    if (p.said === null || now - p.said.at >= this.#refreshMs) return true;
    const change = Math.abs(p.smoothedMs - p.said.ms);
    return change > this.#minChangeMs && change > this.#changeFraction * p.said.ms;
  }
}
