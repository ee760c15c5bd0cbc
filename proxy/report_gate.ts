/**
 * Traffic reports are evidence, not orders: the proxy takes from a host's report only what
 * that host can know and could have carried. The inferred topology steers the fast paths, so
 * a host that could report anything could steer them, poison the smoothed matrix or fill the
 * proxy's VM index.
 *
 *     report ──> too soon after the last one? ── refused whole
 *            ──> each pair / group entry: source owned by the reporter? destination known?
 *            ──> counts clamped to what a link could carry since the last accepted report
 *            ──> VTTIF
 *
 * Every refused report or entry is counted by reason. Pure: ownership, knowledge and `now`
 * come in from the caller.
 *
 * @module
 */

import type { TrafficReport } from "../agent/traffic/counter.ts";

/** The fastest any host link is taken to be: 100 Gbit/s, in bytes per ms. */
export const MAX_LINK_BYTES_PER_MS = 100e9 / 8 / 1000;

/** The smallest Ethernet frame on the wire, for bounding frame counts by bytes. */
const MIN_FRAME_BYTES = 60;

/** Why a report or an entry was not taken. */
export type ReportRefusal =
  | "report too soon"
  | "source not the reporter's"
  | "unknown destination"
  | "clamped";

/** What the gate needs to know about MACs, from the proxy's switch. */
export interface MacFacts {
  /** The host a MAC lives behind, or null (unknown, or on the proxy's LAN). */
  ownerOf(mac: string): string | null;
  /** Whether the proxy knows `mac` at all (behind a host or on its LAN). */
  known(mac: string): boolean;
}

/** Checks hosts' traffic reports; one per proxy. */
export class ReportGate {
  readonly #minGapMs: number;
  readonly #last = new Map<string, number>();
  readonly #joined = new Map<string, number>();
  /** Reports and entries refused or clamped, by reason. */
  readonly refused: Record<ReportRefusal, number> = {
    "report too soon": 0,
    "source not the reporter's": 0,
    "unknown destination": 0,
    "clamped": 0,
  };

  /** @param updateIntervalMs the interval hosts are told to report at */
  constructor(updateIntervalMs: number) {
    // Half an interval of slack: timers drift, and a reconnect may send one early.
    this.#minGapMs = updateIntervalMs / 2;
  }

  /**
   * What of `report` from `host` may reach VTTIF at `now`, or null when it is refused whole.
   *
   * @example
   * ```ts
   * import { ReportGate } from "./report_gate.ts";
   * const gate = new ReportGate(1000);
   * const facts = { ownerOf: (m: string) => (m === "a" ? "h1" : "h2"), known: () => true };
   * gate.joined("h1", 9000);
   * const r = gate.check("h1", {
   *   type: "traffic", intervalMs: 1000, overflowFrames: 0,
   *   pairs: [["a", "b", 1000, 1], ["b", "a", 1000, 1]], group: [],
   * }, facts, 10_000);
   * if (r?.pairs.length !== 1 || gate.refused["source not the reporter's"] !== 1) throw new Error();
   * ```
   */
  check(host: string, report: TrafficReport, facts: MacFacts, now: number): TrafficReport | null {
    const last = this.#last.get(host);
    if (last !== undefined && now - last < this.#minGapMs) {
      this.refused["report too soon"]++;
      return null;
    }
    this.#last.set(host, now);
    // The counts cover at most the time since the last accepted report (or since the host
    // joined), whatever interval the report claims. A host that was cut off reports what it
    // counted meanwhile in its first report: real rates stay far below the bound.
    const since = last ?? this.#joined.get(host) ?? now;
    const coveredMs = Math.min(report.intervalMs, now - since);
    const maxBytes = Math.max(coveredMs, 1) * MAX_LINK_BYTES_PER_MS;
    let budget = maxBytes;
    const take = (bytes: number, frames: number): [number, number] => {
      let b = bytes;
      if (b > budget) {
        this.refused.clamped++;
        b = budget;
      }
      budget -= b;
      const f = Math.min(frames, Math.ceil(b / MIN_FRAME_BYTES));
      return [b, f];
    };
    const pairs: TrafficReport["pairs"] = [];
    for (const [src, dst, bytes, frames] of report.pairs) {
      if (facts.ownerOf(src) !== host) {
        this.refused["source not the reporter's"]++;
        continue;
      }
      if (!facts.known(dst)) {
        this.refused["unknown destination"]++;
        continue;
      }
      pairs.push([src, dst, ...take(bytes, frames)]);
    }
    const group: TrafficReport["group"] = [];
    for (const [src, bytes, frames] of report.group) {
      if (facts.ownerOf(src) !== host) {
        this.refused["source not the reporter's"]++;
        continue;
      }
      group.push([src, ...take(bytes, frames)]);
    }
    return { ...report, intervalMs: coveredMs, pairs, group };
  }

  /** Host `host` joined at `now`: its first report covers at most the time since. */
  joined(host: string, now: number): void {
    this.#joined.set(host, now);
    this.#last.delete(host);
  }

  /** Forgets `host` (it left). */
  forget(host: string): void {
    this.#last.delete(host);
    this.#joined.delete(host);
  }
}
