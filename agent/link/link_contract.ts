/**
 * A link's contract with its owner: the handlers it calls, the options it is built with, the
 * counters it reports (link.ts implements it; the owners are the uplink, the fast-path
 * manager and the proxy's host sessions).
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import type { Link } from "./link.ts";
import type { SendQueueStats } from "./send_queue.ts";

/** What a link reports to its owner. */
export interface LinkHandlers {
  /** A packet arrived; the view is valid only during the call. */
  onFrame(packet: Uint8Array, link: Link): void;
  /** A control message arrived (already JSON-parsed; the owner validates its shape). */
  onControl?(message: unknown, link: Link): void;
  /** The link closed; `reason` is one human-readable line. */
  onClose?(reason: string, link: Link): void;
}

/** Link settings. */
export interface LinkOptions {
  /** Bound of the send queue in bytes. */
  queueBytes: number;
  /** Ping interval when idle. */
  keepaliveMs: number;
  /** Close when nothing was received for this long. */
  deadAfterMs: number;
  /**
   * After this long with nothing but keepalives either way, the link is idle: it pings at
   * this interval and tolerates this plus `deadAfterMs` of silence. Default `keepaliveMs`.
   */
  keepaliveIdleMs?: number;
  /** Keepalive timers and round-trip times; the system clock unless a test drives time. */
  clock?: Clock;
}

/** Counters and health of a link. */
export interface LinkStats extends SendQueueStats {
  rxFrames: number;
  rxBytes: number;
  /** Last measured round-trip time in ms (keepalive), or null before the first PONG. */
  rttMs: number | null;
  /** When the link came up (ms since epoch). */
  upSince: number;
}
