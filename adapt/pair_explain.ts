/**
 * The truth about one host pair, in one line, for `agent paths`, the API and the page: direct
 * or the star, how a link came to be, and why a link the plan wants is not there. The plan
 * says what is wanted; only the loop's state says what is: a pair the planner ranked first is
 * on the star while its link is being set up, and says so.
 *
 *     link up / draining   -> "direct: h2 dialed h1; rank 1 of 1, ..."
 *     being set up         -> "star: setting up a fast path: h2 dials h1 at ...; <failures>"
 *     resting after fails  -> "star: wanted (...), but h2 is not reachable (...); ...; next try in 5 s"
 *     a host not ready     -> "star: the proxy is checking whether h2 can be reached"
 *     not wanted           -> the plan's reason
 *
 * Pure: the loop hands in its state and the time.
 *
 * @module
 */

import { describeAttempt, describeOrigin, type HostReachView } from "./link_setup.ts";
import type { Attempt, LinkOrigin, Rest } from "./link_setup.ts";
import { type HostPair, type PairDecision, splitPair } from "./planner.ts";

/** A pair's path as the API shows it, in one true sentence. */
export interface PairPath {
  path: "direct" | "star";
  /** For a link up, how it came to be; null otherwise. */
  origin: LinkOrigin | null;
  /** Set up now, resting after failures, or neither. */
  state: "up" | "connecting" | "draining" | "resting" | "none";
  reason: string;
  /** For a link up: ms from the plan first wanting it to both ends up. */
  upAfterMs: number | null;
}

/** What is known of one pair. */
export interface PairFacts {
  pair: HostPair;
  decision: PairDecision | undefined;
  link?: {
    phase: "connecting" | "up" | "draining";
    origin: LinkOrigin;
    attempt?: Attempt;
    failures?: string[];
    upAfterMs?: number;
  };
  rest?: Rest;
  /** Whether the planner may give `host` links (its reachability is known). */
  eligible(host: string): boolean;
  reach(host: string): HostReachView | null | undefined;
  listenAddress(host: string): string | null;
}

/**
 * The pair's path and the reason.
 *
 * @example
 * ```ts
 * import { explainPair } from "./pair_explain.ts";
 * const why = explainPair({
 *   pair: "h1|h2",
 *   decision: { pair: "h1|h2", bytesPerSec: 1e6, vmPairs: [], rank: 1, direct: true, reason: "direct: rank 1 of 1" },
 *   rest: { until: 5000, reason: "h2 is not reachable (...); staying on the star", rounds: 1 },
 *   eligible: () => true,
 *   reach: () => undefined,
 *   listenAddress: () => null,
 * }, 0);
 * if (why.path !== "star" || !why.reason.endsWith("next try in 5 s")) throw new Error(why.reason);
 * ```
 */
export function explainPair(f: PairFacts, now: number): PairPath {
  const planned = f.decision?.reason ?? "not planned";
  const wanted = planned.replace(/^direct: /, "");
  const link = f.link;
  if (link && link.phase !== "connecting") {
    return {
      path: "direct",
      origin: link.origin,
      state: link.phase,
      reason: link.phase === "draining"
        ? `direct, being removed: ${planned.replace(/^star: /, "")}`
        : `direct: ${describeOrigin(link.origin, f.pair)}; ${wanted}`,
      upAfterMs: link.upAfterMs ?? null,
    };
  }
  const star = (state: PairPath["state"], reason: string): PairPath => ({
    path: "star",
    origin: null,
    state,
    reason,
    upAfterMs: null,
  });
  if (link) {
    const doing = link.attempt
      ? describeAttempt(link.attempt, f.listenAddress)
      : "waiting for both ends";
    return star(
      "connecting",
      ["star: setting up a fast path: " + doing, ...(link.failures ?? [])].join("; "),
    );
  }
  if (f.rest && f.decision?.direct) {
    const s = Math.max(0, Math.ceil((f.rest.until - now) / 1000));
    return star("resting", `star: wanted (${wanted}), but ${f.rest.reason}; next try in ${s} s`);
  }
  const waiting = splitPair(f.pair).filter((h) => !f.eligible(h)).map((h) => {
    const r = f.reach(h);
    return r?.state === "checking"
      ? `the proxy is checking whether ${h} can be reached`
      : r === null
      ? `${h} is not connected`
      : `${h} has not said where it accepts fast paths`;
  });
  // The planner calls a host it may not use "cannot be reached directly"; say what is known.
  if (f.decision && waiting.length > 0 && !/adaptation off|forbidden/.test(planned)) {
    return star("none", `star: ${waiting.join("; ")}`);
  }
  if (f.decision?.direct) return star("none", `star: wanted (${wanted}), not set up yet`);
  return star("none", planned);
}
