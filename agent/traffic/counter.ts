/**
 * Per-VM-pair traffic counting for VTTIF, at the agent where a frame enters the overlay (from
 * its device), so that every frame is counted once in the whole overlay. Unicast is counted
 * per (source, destination) MAC pair; broadcast and multicast per source, apart, since they
 * say nothing about who talks to whom.
 *
 * Counting is on the frame path: two map look-ups and two additions per frame, and an
 * allocation only for a pair never seen since the last report. The number of pairs is bounded;
 * frames of pairs beyond it are counted as overflow, never dropped.
 *
 * @module
 */

import { formatMac, isGroupMac, type Mac } from "../switch/ethernet.ts";
import type { FrameObserver } from "../switch/switch.ts";

/** Default bound of distinct VM pairs counted between two reports. */
export const MAX_COUNTED_PAIRS = 100_000;

interface Count {
  bytes: number;
  frames: number;
}

/** What a host sends to the proxy every update interval (a CONTROL message body). */
export interface TrafficReport {
  type: "traffic";
  /** Time the counts cover, ms. */
  intervalMs: number;
  /** [src MAC, dst MAC, bytes, frames] per unicast pair. */
  pairs: [string, string, number, number][];
  /** [src MAC, bytes, frames] of broadcast and multicast per source. */
  group: [string, number, number][];
  /** Frames of pairs beyond the bound (counted nowhere else). */
  overflowFrames: number;
}

/**
 * Counts frames by VM pair between reports.
 *
 * @example
 * ```ts
 * import { TrafficCounter } from "./counter.ts";
 * const c = new TrafficCounter({ maxPairs: 100 });
 * c.observe(0x020000000001, 0x020000000002, 1500);
 * c.observe(0x020000000001, 0xffffffffffff, 60);
 * const r = c.report(1000);
 * if (r.pairs[0][2] !== 1500 || r.group[0][1] !== 60) throw new Error(JSON.stringify(r));
 * ```
 */
export class TrafficCounter implements FrameObserver {
  readonly #maxPairs: number;
  #unicast = new Map<Mac, Map<Mac, Count>>();
  #group = new Map<Mac, Count>();
  #pairs = 0;
  #overflowFrames = 0;

  constructor(options: { maxPairs: number }) {
    this.#maxPairs = options.maxPairs;
  }

  /** Pairs counted since the last report. */
  get pairs(): number {
    return this.#pairs;
  }

  /** True when nothing was counted since the last report (a report would say nothing). */
  get empty(): boolean {
    return this.#pairs === 0 && this.#group.size === 0 && this.#overflowFrames === 0;
  }

  observe(src: Mac, dst: Mac, bytes: number): void {
    if (isGroupMac(dst)) {
      const g = this.#group.get(src);
      if (g) {
        g.bytes += bytes;
        g.frames++;
      } else if (this.#group.size < this.#maxPairs) {
        this.#group.set(src, { bytes, frames: 1 });
      } else {
        this.#overflowFrames++;
      }
      return;
    }
    let row = this.#unicast.get(src);
    const c = row?.get(dst);
    if (c) {
      c.bytes += bytes;
      c.frames++;
      return;
    }
    if (this.#pairs >= this.#maxPairs) {
      this.#overflowFrames++;
      return;
    }
    if (!row) this.#unicast.set(src, row = new Map());
    row.set(dst, { bytes, frames: 1 });
    this.#pairs++;
  }

  /** Everything counted since the last report, covering `intervalMs`; starts afresh. */
  report(intervalMs: number): TrafficReport {
    const pairs: TrafficReport["pairs"] = [];
    for (const [src, row] of this.#unicast) {
      const s = formatMac(src);
      for (const [dst, c] of row) pairs.push([s, formatMac(dst), c.bytes, c.frames]);
    }
    const group: TrafficReport["group"] = [];
    for (const [src, c] of this.#group) group.push([formatMac(src), c.bytes, c.frames]);
    const out: TrafficReport = {
      type: "traffic",
      intervalMs,
      pairs,
      group,
      overflowFrames: this.#overflowFrames,
    };
    this.#unicast = new Map();
    this.#group = new Map();
    this.#pairs = 0;
    this.#overflowFrames = 0;
    return out;
  }
}
