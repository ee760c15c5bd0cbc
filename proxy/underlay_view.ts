/**
 * What `GET /api/underlay` shows of the proxy's underlay service (underlay_service.ts): every
 * pair's estimate, what the planner takes for each host pair, and what was refused.
 *
 * @module
 */

import type { HostPair } from "../adapt/planner.ts";
import type { UnderlayEstimate, UnderlayRefusal } from "../adapt/underlay.ts";
import type { PlannedPathView } from "./path_price.ts";
import type { ProbeCounts } from "./underlay_probes.ts";

/** Why an entry of a host's path-rtt report was not taken. */
export type PathRttRefusal =
  | "no fast path"
  | "own name"
  | "duplicate peer"
  | "rtt out of range"
  | "too often";

export const PATH_RTT_REFUSALS: readonly PathRttRefusal[] = [
  "no fast path",
  "own name",
  "duplicate peer",
  "rtt out of range",
  "too often",
];

/** One pair as `GET /api/underlay` shows it. */
export interface UnderlayPairView extends UnderlayEstimate {
  /** A star link (proxy <-> host) or a host pair. */
  kind: "star link" | "host pair";
}

/** `GET /api/underlay`. */
export interface UnderlayView {
  updatedAt: number;
  pairs: UnderlayPairView[];
  /**
   * How each host pair is priced. Up to {@linkcode FULL_VIEW_HOSTS} connected hosts every
   * pair; beyond, only the pairs measured or carrying VM traffic (`partial`): every pair of
   * 10,000 hosts is 50 million, minutes of the proxy's one thread.
   */
  planned: PlannedPathView[];
  /** Connected host pairs that carried nothing lately: priced as their star path (not when partial). */
  unmeasured: HostPair[];
  /** Planned and unmeasured list only some pairs (more than FULL_VIEW_HOSTS hosts). */
  partial: boolean;
  /** Bytes/s through the proxy's star links together: last interval, and the most seen. */
  proxy: { bytesPerSec: number; bestBytesPerSec: number };
  refused: Record<UnderlayRefusal, number>;
  /** Entries of hosts' path-rtt reports refused, by reason. */
  pathRttRefused: Record<PathRttRefusal, number>;
  /** The active RTT probes: sent, answered, failed, unanswered, answers refused by reason. */
  probes: ProbeCounts;
}

/** Hosts up to which the view lists every pair. */
export const FULL_VIEW_HOSTS = 128;
