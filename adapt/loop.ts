/**
 * The adaptation loop in the proxy: it turns the planner's decisions into fast-path links and
 * forwarding rules on the hosts, through their control channels, in a safe order.
 *
 *     add:     attempts in order (link_setup.ts): the side that cannot be reached dials the
 *              one that can, else the other way, else a hole punch -> both report peer-up ->
 *              rules-set on both hosts -> both rules-applied: traffic is on the fast path;
 *              a failed attempt starts the next at once, with none left the pair rests
 *     remove:  rules-set without the pair's rules -> both rules-applied -> peer-close
 *     failure: a host reports peer-down -> its switch already fell back to the star; the
 *              pair's rules are withdrawn everywhere and it rests before it is tried again
 *
 * Parts: link_setup.ts (who dials, what next; reachability from proxy/reachability.ts),
 * rule_sync.ts (declarative per-host rule sets: a reconnected host or a restarted proxy
 * converges without replaying history), reactions.ts (reaction times), pair_explain.ts (the
 * truth per pair for the API). It reacts to topology changes and host events, and re-checks
 * every second.
 *
 * @module
 */

import { type Clock, systemClock } from "../agent/clock.ts";
import type { PeerState, ProxyMessage, RulesApplied } from "../agent/control/messages.ts";
import { logger } from "../agent/log.ts";
import type { AdaptEvent } from "./events.ts";
import type { Attempt, HostReachView, LinkOrigin } from "./link_setup.ts";
import { attemptsFor, CONNECT_TIMEOUT_MS, describeOrigin, endsAttempt } from "./link_setup.ts";
import { isPlannable, LinkSetup } from "./link_setup.ts";
import { explainPair, type PairPath } from "./pair_explain.ts";
import { ADAPT_OWNER, rulesPerHost, RuleSync } from "./rule_sync.ts";
import { ReconcilePacer } from "./reconcile_pacer.ts";
import type { Overlay } from "./overlay.ts";
import { originOf, type PairState } from "./pair_state.ts";
import { type MoveRecord, type Reaction, ReactionLog } from "./reactions.ts";
import type { AdaptSettings, HostPair, Plan } from "./planner.ts";
import { hostPair, plan, splitPair } from "./planner.ts";

export type { Attempt, HostReachView, LinkOrigin, MoveRecord };
export type { Overlay, PairPath, PairState, Reaction };

/** Drives fast-path links and adapt rules towards the current plan. */
export class AdaptLoop {
  settings: AdaptSettings;
  readonly pairs = new Map<HostPair, PairState>();
  readonly #overlay: Overlay;
  readonly #setup: LinkSetup;
  readonly #rules: RuleSync;
  #lastPlan: Plan | null = null;
  readonly #measured = new ReactionLog();
  readonly #log = logger("adapt");
  /** Told of every fast-path phase change and every measured reaction. */
  onEvent: ((e: AdaptEvent) => void) | null = null;
  readonly #warmUntil: number;
  readonly #clock: Clock;
  /** Re-plans for events that come in floods (joins' first rule sets and listeners). */
  readonly #pacer: ReconcilePacer;

  /**
   * @param options.warmupMs after the loop starts, links it adopts from the hosts are not
   *   removed for this long: a restarted proxy knows no traffic yet, and working links should
   *   not be torn down before VTTIF has had the time to see whether they are still wanted.
   * @param options.punchPort picks a hole punch's local port (tests fix it)
   */
  constructor(
    overlay: Overlay,
    settings: AdaptSettings,
    options: { warmupMs?: number; clock?: Clock; punchPort?: () => number } = {},
  ) {
    this.#overlay = overlay;
    this.#setup = new LinkSetup(overlay, (h, m) => this.#send(h, m), options);
    this.#setup.onEvent = (e) => this.onEvent?.(e);
    this.#rules = new RuleSync((h, m) => this.#send(h, m));
    this.settings = settings;
    this.#clock = options.clock ?? systemClock;
    this.#warmUntil = this.#clock.now() + (options.warmupMs ?? 0);
    this.#pacer = new ReconcilePacer(() => this.reconcile(this.#clock.now()), this.#clock);
  }

  /** The last plan computed (for the API's per-pair reasons). */
  get lastPlan(): Plan | null {
    return this.#lastPlan;
  }

  /** Called when a topology change is declared at `detectedAt` (ms). */
  onTopologyChange(detectedAt: number): void {
    this.#measured.changeDeclared(detectedAt);
    this.reconcile(this.#clock.now());
  }

  /** Reactions measured: topology change declared -> rules active on every host. */
  get reactions(): Reaction[] {
    return this.#measured.reactions;
  }

  /** Migrations measured: first frame on the new host -> rules updated on every host. */
  get moves(): MoveRecord[] {
    return this.#measured.moves;
  }

  /**
   * A VM appeared behind another host: re-plan at once, so that rules towards its old host
   * are replaced everywhere, and measure how long that takes.
   */
  onVmMoved(mac: string, now: number): void {
    this.#measured.vmMoved(mac, now);
    // After the switch has finished with the frame that moved it (we are called from inside
    // Switch.forward, and the MAC table already has the new owner).
    queueMicrotask(() => this.reconcile(this.#clock.now()));
  }

  /** A host (re)joined: it gets its rule set anew. */
  onHostUp(host: string): void {
    this.#rules.forget(host);
  }

  /** A host left: its links are gone. */
  onHostDown(host: string): void {
    this.#rules.forget(host);
    const reason = `${host} left the overlay`;
    for (const other of this.peersOf(host)) {
      const pair = hostPair(host, other);
      this.pairs.delete(pair);
      this.#send(other, { type: "peer-close", peer: host, reason });
      this.#log.info("Fast path {pair} dropped: {host} left", { pair, host });
      this.onEvent?.({ type: "link", pair, phase: "closed", reason });
    }
    // Paced: a partition or a proxy uplink flap drops thousands of hosts at once.
    this.reconcileSoon();
  }

  /** Handles a host's report about its fast paths or rules. */
  onHostMessage(host: string, msg: PeerState | RulesApplied, now: number): void {
    switch (msg.type) {
      case "rules-applied":
        if (msg.owner === ADAPT_OWNER) this.#rules.applied(host, msg.seq);
        break;
      case "peer-up":
        this.#peerUp(host, msg, now);
        break;
      case "peer-down":
        this.#peerDown(host, msg, now);
        break;
      default:
        return;
    }
    if (msg.type === "rules-applied") this.reconcileSoon();
    else this.reconcile(now);
  }

  /** Re-plans soon: at once, or merged with others when re-planning is costly (a storm). */
  reconcileSoon(): void {
    this.#pacer.request();
  }

  #peerUp(host: string, msg: PeerState, now: number): void {
    const pair = hostPair(host, msg.peer);
    let st = this.pairs.get(pair);
    if (!st) {
      // A link we did not ask for in this lifetime (the proxy restarted): adopt it; the plan
      // decides whether it stays.
      st = { pair, phase: "connecting", ends: new Set(), since: now, adopted: true };
      this.pairs.set(pair, st);
    }
    st.ends.add(host);
    if (msg.via === "dialed") st.dialer = host;
    if (msg.via === "punched") st.punched = true;
    if (st.phase !== "connecting" || st.ends.size !== 2) return;
    st.phase = "up";
    st.since = now;
    st.upAfterMs = now - (st.wantedAt ?? now);
    this.#setup.cameUp(pair);
    const how = describeOrigin(originOf(st), pair);
    this.#log.info("Fast path {pair} is up on both ends ({how}) {ms} ms after wanted", {
      pair,
      how,
      ms: st.upAfterMs,
    });
    this.onEvent?.({ type: "link", pair, phase: "up", via: how });
  }

  #peerDown(host: string, msg: PeerState, now: number): void {
    const pair = hostPair(host, msg.peer);
    const st = this.pairs.get(pair);
    if (!st) return;
    const reason = msg.reason ?? "";
    if (st.phase === "connecting" && st.attempt) {
      // A report from an earlier attempt's end (it gave up late) is not this attempt's.
      if (endsAttempt(st, host, reason)) {
        this.#attemptFailed(st, `${host}: ${reason || "failed"}`, now);
      }
      return;
    }
    this.pairs.delete(pair);
    this.#setup.wentDown(pair, `the link went down (${host}: ${reason})`, now);
    this.onEvent?.({ type: "link", pair, phase: "down", reason });
    this.#send(msg.peer, { type: "peer-close", peer: host, reason: `${host} lost the link` });
    this.#log.warn("Fast path {pair} went down ({reason}); its traffic is back on the star", {
      pair,
      reason,
    });
  }

  /** The attempt under way failed: the next starts, or the pair closes and rests. */
  #attemptFailed(st: PairState, why: string, now: number): void {
    if (this.#setup.failed(st, why, now) === "failed") {
      this.#closePair(st.pair, this.#setup.resting.get(st.pair)?.reason ?? why);
    }
  }

  /** Plans and acts; safe to call any time. */
  reconcile(now: number): void {
    const hosts = this.#overlay.hosts();
    this.#setup.expire(now);
    // Asked of the plan's hosts alone: a set of all 10,000 hosts, built every second, was a
    // sixth of an idle proxy's main-thread work.
    const eligible = { has: (h: string) => hosts.has(h) && isPlannable(this.#overlay, h) };
    const current = new Set(
      [...this.pairs.values()].filter((s) => s.phase !== "draining").map((s) => s.pair),
    );
    const p = plan({
      graph: this.#overlay.topology(),
      vmHost: this.#overlay.vmHosts(),
      eligible,
      current,
      settings: this.settings,
    });
    this.#lastPlan = p;
    const decision = new Map(p.decisions.map((d) => [d.pair, d.reason]));
    this.#setup.trackWanted(p.links, (pair) => this.pairs.get(pair)?.phase === "up", now);
    for (const pair of p.toAdd) this.#add(pair, decision.get(pair) ?? "", now);
    for (const pair of p.toRemove) this.#remove(pair, decision.get(pair), now);
    this.#expireAttempts(now);
    this.#sendRules(p, hosts);
    this.#drain(hosts);
    this.#measured.settle(
      () => this.#converged(p, hosts),
      p.links.length,
      now,
      (e) => this.onEvent?.(e),
    );
  }

  /** Starts setting up the link of `pair`, unless it rests or cannot be tried. */
  #add(pair: HostPair, reason: string, now: number): void {
    if (this.#setup.resting.has(pair)) return;
    const [a, b] = splitPair(pair);
    if (!this.#overlay.keyOf(a) || !this.#overlay.keyOf(b)) return;
    const [first, ...next] = attemptsFor(a, b, this.#overlay);
    if (!first) return;
    // Each end learns which sources the other may send before the link can exist.
    const vmHost = this.#overlay.vmHosts();
    const vmsOf = (h: string) => [...vmHost].filter(([, x]) => x === h).map(([mac]) => mac);
    this.#send(b, { type: "peer-macs", peer: a, change: "set", macs: vmsOf(a) });
    this.#send(a, { type: "peer-macs", peer: b, change: "set", macs: vmsOf(b) });
    const st: PairState = {
      pair,
      phase: "connecting",
      ends: new Set(),
      since: now,
      next,
      failures: [],
      wantedAt: this.#setup.wantedAt(pair) ?? now,
    };
    this.pairs.set(pair, st);
    this.#log.info("Adding fast path {pair}: {reason}", { pair, reason });
    if (this.#setup.start(st, first, now, reason) === "failed") {
      this.#closePair(pair, this.#setup.resting.get(pair)?.reason ?? "cannot be set up");
    }
  }

  /** Takes the link of `pair` down: rules first (draining), then the link. */
  #remove(pair: HostPair, reason: string | undefined, now: number): void {
    const st = this.pairs.get(pair);
    if (!st || st.phase === "draining") return;
    // An adopted link survives the warm-up: the traffic that earned it is not known yet.
    if (st.adopted && now < this.#warmUntil && this.settings.enabled) return;
    this.#log.info("Removing fast path {pair}: {reason}", {
      pair,
      reason: reason ?? "no traffic between these hosts any more",
    });
    if (st.phase === "connecting") return this.#closePair(pair, "no longer needed");
    st.phase = "draining";
    st.since = now;
    this.onEvent?.({ type: "link", pair, phase: "draining", reason: reason ?? "" });
  }

  /** An attempt that has not brought its link up in time failed. */
  #expireAttempts(now: number): void {
    for (const st of [...this.pairs.values()]) {
      if (st.phase !== "connecting" || now - st.since <= CONNECT_TIMEOUT_MS) continue;
      if (st.attempt) {
        this.#attemptFailed(st, `no link within ${CONNECT_TIMEOUT_MS / 1000} s`, now);
        continue;
      }
      // A link found running (adopted) that never came up on both ends.
      const why = "the link found running did not come up on both ends in time";
      this.#log.warn("Fast path {pair}: {why}; staying on the star", { pair: st.pair, why });
      this.#closePair(st.pair, why);
      this.#setup.wentDown(st.pair, why, now);
    }
  }

  /** Rules only for pairs whose link is up on both ends; draining pairs lose theirs first. */
  #sendRules(p: Plan, hosts: ReadonlyMap<string, unknown>): void {
    const live = [...this.pairs.values()].filter((s) => s.phase === "up").map((s) => s.pair);
    this.#rules.sync(rulesPerHost(p.rules, new Set(live)), hosts.keys());
  }

  /** Closes draining links once both ends applied rule sets without them. */
  #drain(hosts: ReadonlyMap<string, unknown>): void {
    for (const st of this.pairs.values()) {
      if (st.phase !== "draining") continue;
      if (!st.drainSeq) {
        st.drainSeq = new Map(splitPair(st.pair).map((h) => [h, this.#rules.sentSeq(h)]));
      }
      const done = [...st.drainSeq].every(([h, seq]) =>
        this.#rules.hasApplied(h, seq) || !hosts.has(h)
      );
      if (done) this.#closePair(st.pair, "no longer needed");
    }
  }

  /** Runs `reconcile` every `intervalMs` until `signal` aborts. */
  run(signal: AbortSignal, intervalMs = 1000): Promise<void> {
    return new Promise((resolve) => {
      const t = this.#clock.every(intervalMs, () => this.reconcile(this.#clock.now()));
      signal.addEventListener("abort", () => {
        t.cancel();
        this.#pacer.cancel();
        resolve();
      }, { once: true });
    });
  }

  /** True when every planned link is up and every host has applied its latest rule set. */
  #converged(p: Plan, hosts: ReadonlyMap<string, unknown>): boolean {
    for (const pair of p.links) {
      if (this.pairs.get(pair)?.phase !== "up") return false;
    }
    return this.#rules.converged(hosts.keys());
  }

  /**
   * The truth about `pair` in one line: direct or star, how the link came to be, and why a
   * link the plan wants is not there (what failed, which side cannot be reached, when the next
   * try is).
   *
   * @param now the time, to say when a resting pair is tried again
   */
  explain(pair: HostPair, now: number): PairPath {
    const st = this.pairs.get(pair);
    return explainPair({
      pair,
      decision: this.#lastPlan?.decisions.find((d) => d.pair === pair),
      link: st && { ...st, origin: originOf(st) },
      rest: this.#setup.resting.get(pair),
      eligible: (h) => isPlannable(this.#overlay, h),
      reach: (h) => this.#overlay.reach?.(h),
      listenAddress: (h) => this.#overlay.listenAddress(h),
    }, now);
  }

  /** Whether `host` can be dialed, as the proxy checked it (undefined: no checks). */
  reachOf(host: string): HostReachView | null | undefined {
    return this.#overlay.reach?.(host);
  }

  #closePair(pair: HostPair, reason: string): void {
    const [a, b] = splitPair(pair);
    this.#send(a, { type: "peer-close", peer: b, reason });
    this.#send(b, { type: "peer-close", peer: a, reason });
    this.pairs.delete(pair);
    this.onEvent?.({ type: "link", pair, phase: "closed", reason });
  }

  /** Hosts that have, or are setting up, a fast path with `host`. */
  peersOf(host: string): string[] {
    const out: string[] = [];
    for (const pair of this.pairs.keys()) {
      const [a, b] = splitPair(pair);
      if (a === host) out.push(b);
      else if (b === host) out.push(a);
    }
    return out;
  }

  /**
   * A VM appeared behind `host` or left it: every fast-path peer of `host` is told, so that
   * it accepts (or stops accepting) that source on the link.
   */
  onVmPlaced(mac: string, host: string, change: "add" | "remove"): void {
    for (const peer of this.peersOf(host)) {
      this.#send(peer, { type: "peer-macs", peer: host, change, macs: [mac] });
    }
  }

  #send(host: string, msg: ProxyMessage): boolean {
    return this.#overlay.hosts().get(host)?.sendControl(msg) ?? false;
  }
}
