/**
 * A fast-path link as the adaptation loop tracks it, from the first attempt to set it up to
 * its close, and how it came to be.
 *
 * @module
 */

import type { Attempt, LinkOrigin } from "./link_setup.ts";
import type { HostPair } from "./planner.ts";

/** A fast-path link as the loop tracks it. */
export interface PairState {
  pair: HostPair;
  phase: "connecting" | "up" | "draining";
  /** Ends that reported the link up. */
  ends: Set<string>;
  /** When the phase began (ms). */
  since: number;
  /** Found running when this proxy started (reported by the hosts), not set up by it. */
  adopted?: boolean;
  /** The rule set (per host) that no longer has this pair's rules, for draining. */
  drainSeq?: Map<string, number>;
  /** The attempt under way (connecting) or that made the link (up); absent when adopted. */
  attempt?: Attempt;
  /** Attempts left to try, in order, when the current one fails. */
  next?: Attempt[];
  /** What failed so far in this round, one line each. */
  failures?: string[];
  /** The end that dialed, as the ends reported (peer-up via). */
  dialer?: string;
  /** A hole punch made it (as the ends reported). */
  punched?: boolean;
  /** When the plan first wanted this link in this round (ms). */
  wantedAt?: number;
  /** ms from wanted to up, once up. */
  upAfterMs?: number;
}

/** How a link came to be, as its ends reported it (or the attempt that made it). */
export function originOf(st: PairState): LinkOrigin {
  if (st.punched) return { how: "punch" };
  if (st.dialer) return { how: "dial", dialer: st.dialer };
  if (st.attempt?.how === "dial") return { how: "dial", dialer: st.attempt.dialer };
  if (st.attempt?.how === "punch") return { how: "punch" };
  return { how: "adopted" };
}
