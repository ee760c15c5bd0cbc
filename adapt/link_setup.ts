/**
 * How the adaptation sets up one wanted fast path, when hosts may sit behind NATs and
 * firewalls: which side dials, what to try when that fails, and how long a pair rests after
 * every way failed. The loop (loop.ts) decides *which* pairs get links; this decides *how*.
 *
 *     attemptsFor: dial the side the proxy reached (the later name when it reached both)
 *                  -> the other direction -> a hole punch (both ends at once)
 *     start:       ticket -> peer-expect + peer-connect | peer-punch to both
 *     failed:      the next attempt at once | none left: the pair rests 5 s, doubling to 60 s,
 *                  with every reason kept (what each attempt saw, which side is unreachable)
 *
 * Reachability is the proxy's own check (proxy/reachability.ts), read through
 * {@linkcode LinkSetupOverlay.reach}; without it (tests of old shape) the later name accepts
 * when it has a listen address, as before.
 *
 * @module
 */

import type { ProxyMessage } from "../agent/control/messages.ts";
import { formatAddress } from "../agent/config/types.ts";
import { mintTicket } from "../agent/fastpath/tickets.ts";
import { logger } from "../agent/log.ts";
import type { AdaptEvent } from "./events.ts";
import { type HostPair, splitPair } from "./planner.ts";

/** Time one attempt at a link may take to come up. */
export const CONNECT_TIMEOUT_MS = 10_000;
/** Rest after a failed or cut link before it may be tried again; doubled per failed round. */
export const FAILURE_BACKOFF_MS = 5_000;
/** Longest rest after rounds of failed attempts. */
export const MAX_BACKOFF_MS = 60_000;
/** How long both ends of a hole punch keep trying. */
export const PUNCH_TIMEOUT_MS = 5_000;
/** Local ports a punch connects from: above Linux's ephemeral range, so rarely in use. */
export const PUNCH_PORTS = { min: 61_000, max: 65_535 };

/** What the loop reads of a host's reachability (proxy/reachability.ts keeps it). */
export interface HostReachView {
  state: "not listening" | "checking" | "reachable" | "unreachable";
  /** Where peers dial it (checked). */
  listen: string | null;
  /** Where its star link comes from: behind a NAT, the NAT's address. */
  outside: { hostname: string; port: number };
  /** What was tried and what came of it. */
  reason: string;
}

/** One way to set up a pair's link. */
export type Attempt =
  | { how: "dial"; dialer: string; acceptor: string }
  | { how: "punch"; client: string; server: string };

/** How a link up came to be: who dialed, a hole punch, or found running (adopted). */
export type LinkOrigin =
  | { how: "dial"; dialer: string }
  | { how: "punch" }
  | { how: "adopted" };

/** One end of a hole punch: the host, its outside address, the port it connects from. */
interface PunchEnd {
  host: string;
  outside: string;
  port: number;
  role: "tls-server" | "tls-client";
}

/** What setting links up needs to know of the overlay. */
export interface LinkSetupOverlay {
  listenAddress(host: string): string | null;
  keyOf(host: string): string | null;
  reach?(host: string): HostReachView | null | undefined;
  recheck?(host: string): void;
}

/** A pair being set up, as far as this module touches it (the loop's PairState). */
export interface SetupState {
  pair: HostPair;
  since: number;
  ends: Set<string>;
  attempt?: Attempt;
  next?: Attempt[];
  failures?: string[];
}

/** Why a pair rests on the star, until when, after how many failed rounds. */
export interface Rest {
  until: number;
  reason: string;
  rounds: number;
}

/**
 * The ways to link `a` and `b` (`a < b`), best first.
 *
 * @example
 * ```ts
 * import { attemptsFor } from "./link_setup.ts";
 * const reach = (h: string) => ({
 *   state: h === "h1" ? "reachable" as const : "unreachable" as const,
 *   listen: h === "h1" ? "10.0.0.1:7810" : null,
 *   outside: { hostname: "192.0.2.1", port: 1 },
 *   reason: "",
 * });
 * const a = attemptsFor("h1", "h2", { reach, listenAddress: (h) => reach(h).listen });
 * if (a[0].how !== "dial" || a[0].dialer !== "h2") throw new Error("h2 cannot be reached");
 * if (a[1].how !== "punch") throw new Error("then a punch");
 * ```
 */
export function attemptsFor(
  a: string,
  b: string,
  overlay: Pick<LinkSetupOverlay, "reach" | "listenAddress">,
): Attempt[] {
  const ra = overlay.reach?.(a);
  const rb = overlay.reach?.(b);
  if (ra === undefined || rb === undefined) {
    return overlay.listenAddress(b) !== null ? [{ how: "dial", dialer: a, acceptor: b }] : [];
  }
  if (!ra || !rb) return [];
  const out: Attempt[] = [];
  if (rb.state === "reachable" && rb.listen) out.push({ how: "dial", dialer: a, acceptor: b });
  if (ra.state === "reachable" && ra.listen) out.push({ how: "dial", dialer: b, acceptor: a });
  out.push({ how: "punch", client: a, server: b });
  return out;
}

/**
 * Whether the planner may give `host` links: once the proxy knows whether it can be dialed
 * (either way: a host nobody can reach still dials out, or punches). Without reachability
 * checks, when it has a listen address.
 */
export function isPlannable(
  overlay: Pick<LinkSetupOverlay, "reach" | "listenAddress">,
  host: string,
): boolean {
  const r = overlay.reach?.(host);
  if (r === undefined) return overlay.listenAddress(host) !== null;
  return r !== null && (r.state === "reachable" || r.state === "unreachable");
}

/** Whether a peer-down from `host` ends the attempt under way (not an earlier one's end). */
export function endsAttempt(st: SetupState, host: string, reason: string): boolean {
  const a = st.attempt;
  if (!a) return true;
  return a.how === "punch" || (a.how === "dial" && host === a.dialer) || st.ends.has(host) ||
    /revoked/.test(reason);
}

/** An attempt in words: "h2 dials h1 at 10.0.0.3:7810", "hole punch between h1 and h2". */
export function describeAttempt(a: Attempt, listenAddress: (h: string) => string | null): string {
  if (a.how === "punch") return `hole punch between ${a.client} and ${a.server}`;
  return `${a.dialer} dials ${a.acceptor} at ${listenAddress(a.acceptor) ?? "?"}`;
}

/** How a link came to be, in words. */
export function describeOrigin(o: LinkOrigin, pair: HostPair): string {
  if (o.how === "punch") return "hole punched (both ends connected at once)";
  if (o.how === "adopted") return "found running when the proxy started";
  const other = splitPair(pair).find((h) => h !== o.dialer) ?? "?";
  return `${o.dialer} dialed ${other}`;
}

/** Which ends of `pair` the proxy could not reach, and why ("" when it reached both). */
export function unreachableEnds(
  pair: HostPair,
  reach: LinkSetupOverlay["reach"],
): string {
  const [a, b] = splitPair(pair);
  const away = [b, a].map((h) => [h, reach?.(h)] as const)
    .filter(([, r]) => r && r.state !== "reachable");
  return away.map(([h, r], i) => `${h} is not reachable${i > 0 ? " either" : ""} (${r!.reason})`)
    .join("; ");
}

/**
 * Starts attempts, moves on from failed ones, and keeps the rests of pairs for which every
 * attempt failed.
 */
export class LinkSetup {
  readonly #overlay: LinkSetupOverlay;
  readonly #send: (host: string, msg: ProxyMessage) => boolean;
  readonly #port: () => number;
  /** Pairs resting on the star after a failure, with why. */
  readonly resting = new Map<HostPair, Rest>();
  /** Failed rounds in a row per pair (the rest doubles with each). */
  readonly #rounds = new Map<HostPair, number>();
  /** When the plan first wanted a pair that is not up (ms): "wanted -> up" counts from it. */
  readonly #wanted = new Map<HostPair, number>();
  readonly #log = logger("adapt");
  /** Told of every attempt started. */
  onEvent: ((e: AdaptEvent) => void) | null = null;

  constructor(
    overlay: LinkSetupOverlay,
    send: (host: string, msg: ProxyMessage) => boolean,
    options: { punchPort?: () => number } = {},
  ) {
    this.#overlay = overlay;
    this.#send = send;
    this.#port = options.punchPort ??
      (() => PUNCH_PORTS.min + Math.floor(Math.random() * (PUNCH_PORTS.max - PUNCH_PORTS.min)));
  }

  /** Ends rests that are over. */
  expire(now: number): void {
    for (const [pair, r] of this.resting) if (r.until <= now) this.resting.delete(pair);
  }

  /** A link was up and went down: the pair rests the short time. */
  wentDown(pair: HostPair, reason: string, now: number): void {
    this.resting.set(pair, { until: now + FAILURE_BACKOFF_MS, reason, rounds: 0 });
  }

  /** A link came up: its next failure starts from the shortest rest again. */
  cameUp(pair: HostPair): void {
    this.#rounds.delete(pair);
    this.#wanted.delete(pair);
  }

  /** Notes when the plan first wanted each of `links` that is not `up`; forgets the rest. */
  trackWanted(links: readonly HostPair[], up: (pair: HostPair) => boolean, now: number): void {
    for (const pair of this.#wanted.keys()) if (!links.includes(pair)) this.#wanted.delete(pair);
    for (const pair of links) {
      if (!up(pair) && !this.#wanted.has(pair)) this.#wanted.set(pair, now);
    }
  }

  /** When the plan first wanted `pair`'s link in this round, if it does. */
  wantedAt(pair: HostPair): number | undefined {
    return this.#wanted.get(pair);
  }

  /** Sends the instructions of `attempt` for `st`'s pair; `why` goes into the event. */
  start(st: SetupState, attempt: Attempt, now: number, why: string): "started" | "failed" {
    st.attempt = attempt;
    st.since = now;
    st.ends.clear();
    const ticket = mintTicket();
    const o = this.#overlay;
    if (attempt.how === "dial") {
      const { dialer, acceptor } = attempt;
      this.#send(acceptor, {
        type: "peer-expect",
        peer: dialer,
        key: o.keyOf(dialer)!,
        ticket,
        ttlMs: CONNECT_TIMEOUT_MS,
      });
      this.#send(dialer, {
        type: "peer-connect",
        peer: acceptor,
        key: o.keyOf(acceptor)!,
        address: o.listenAddress(acceptor)!,
        ticket,
      });
    } else if (!this.#punch(attempt, ticket)) {
      return this.failed(st, "an outside address is not known", now);
    }
    const reason = [
      describeAttempt(attempt, (h) => o.listenAddress(h)),
      unreachableEnds(
        st.pair,
        o.reach,
      ),
      why,
    ].filter(Boolean).join("; ");
    this.onEvent?.({ type: "link", pair: st.pair, phase: "connecting", reason });
    return "started";
  }

  /**
   * Both at once: each end connects from its port to the other's outside address at the port
   * the other connects from (a port-keeping NAT maps a port to itself).
   */
  #punch(a: Extract<Attempt, { how: "punch" }>, ticket: string): boolean {
    const o = this.#overlay;
    const outC = o.reach?.(a.client)?.outside;
    const outS = o.reach?.(a.server)?.outside;
    if (!outC || !outS) return false;
    const portC = this.#port();
    let portS = this.#port();
    while (portS === portC) portS = this.#port();
    const [server, client]: PunchEnd[] = [
      { host: a.server, outside: outS.hostname, port: portS, role: "tls-server" },
      { host: a.client, outside: outC.hostname, port: portC, role: "tls-client" },
    ];
    this.#sendPunch(ticket, { self: server, peer: client });
    this.#sendPunch(ticket, { self: client, peer: server });
    return true;
  }

  /** Tells `self` to connect from its port to `peer`'s outside address, at `peer`'s port. */
  #sendPunch(ticket: string, ends: { self: PunchEnd; peer: PunchEnd }): void {
    const { self, peer } = ends;
    this.#send(self.host, {
      type: "peer-punch",
      ticket,
      ttlMs: PUNCH_TIMEOUT_MS,
      peer: peer.host,
      key: this.#overlay.keyOf(peer.host)!,
      address: formatAddress({ hostname: peer.outside, port: peer.port }),
      localPort: self.port,
      role: self.role,
    });
  }

  /**
   * The attempt under way failed (`why`): the next one starts at once and "started" is
   * returned; with none left the pair rests, longer after each failed round, and "failed"
   * says the caller must close it.
   */
  failed(st: SetupState, why: string, now: number): "started" | "failed" {
    const a = st.attempt!;
    const listen = (h: string) => this.#overlay.listenAddress(h);
    // Nothing came through either NAT in time: with both sides sending, that is what a NAT
    // that gives each connection its own outside port does (or one that drops the SYNs).
    const hint = a.how === "punch" && /no connection within/.test(why)
      ? "; nothing got through: a NAT likely gives each connection its own port"
      : "";
    st.failures = [...(st.failures ?? []), `${describeAttempt(a, listen)} failed (${why}${hint})`];
    // The proxy reached the acceptor, a peer could not: look again (it may have changed).
    if (a.how === "dial") this.#overlay.recheck?.(a.acceptor);
    const next = st.next?.shift();
    if (next) {
      this.#log.info("Fast path {pair}: {why}; trying {next}", {
        pair: st.pair,
        why: st.failures.at(-1),
        next: describeAttempt(next, listen),
      });
      return this.start(st, next, now, "");
    }
    const rounds = (this.#rounds.get(st.pair) ?? 0) + 1;
    this.#rounds.set(st.pair, rounds);
    const restMs = Math.min(FAILURE_BACKOFF_MS * 2 ** (rounds - 1), MAX_BACKOFF_MS);
    const reason = [unreachableEnds(st.pair, this.#overlay.reach), ...st.failures]
      .filter(Boolean).join("; ") + "; staying on the star";
    this.resting.set(st.pair, { until: now + restMs, reason, rounds });
    this.#log.warn("Fast path {pair} not possible now: {reason}; next try in {s} s", {
      pair: st.pair,
      reason,
      s: restMs / 1000,
    });
    return "failed";
  }
}
