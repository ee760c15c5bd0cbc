/**
 * The adaptation loop in the proxy: it turns the planner's decisions into fast-path links and
 * forwarding rules on the hosts, through their control channels, in a safe order.
 *
 *     add:     ticket -> acceptor (peer-expect), dialer (peer-connect) -> both report peer-up
 *              -> rules-set on both hosts -> both rules-applied: traffic is on the fast path
 *     remove:  rules-set without the pair's rules -> both rules-applied -> peer-close
 *     failure: a host reports peer-down -> its switch already fell back to the star (rules to a
 *              missing port stop matching); the pair's rules are withdrawn everywhere and the
 *              pair rests for a while before it may be tried again
 *
 * The loop reacts to topology changes and host events, and re-checks every second. It keeps
 * per-host rule sets declaratively (each rules-set replaces the host's adapt rules), so a
 * reconnected host or a restarted proxy converges without replaying history.
 *
 * @module
 */

import { type Clock, systemClock } from "../agent/clock.ts";
import type { PeerState, ProxyMessage, RulesApplied, WireRule } from "../agent/control/messages.ts";
import { mintTicket } from "../agent/fastpath/tickets.ts";
import { logger } from "../agent/log.ts";
import { peerOfPort } from "../agent/switch/port_name.ts";
import type { TopologyGraph } from "../inference/topology.ts";
import type { AdaptEvent } from "./events.ts";
import {
  type AdaptSettings,
  type HostPair,
  hostPair,
  type Plan,
  plan,
  splitPair,
} from "./planner.ts";

/** What the loop needs from the proxy. */
export interface Overlay {
  /** Connected hosts by name, with a way to send them control messages. */
  hosts(): ReadonlyMap<string, { sendControl(msg: ProxyMessage): boolean }>;
  /** Where `host` accepts fast-path links (`ip:port`), or null. */
  listenAddress(host: string): string | null;
  /**
   * The key `host` joined with (`SHA256:...`), or null: its peers verify its certificate by
   * it, so a certificate of a revoked key for the same name is refused.
   */
  keyOf(host: string): string | null;
  /** VM MAC -> host name, from the proxy's MAC table. */
  vmHosts(): ReadonlyMap<string, string>;
  /** The current inferred topology. */
  topology(): TopologyGraph;
}

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
}

/** One measured VNET reaction: topology change declared -> rules active on every host. */
export interface Reaction {
  detectedAt: number;
  activeAt: number;
  ms: number;
  links: number;
}

/** Time a link may take to come up. */
export const CONNECT_TIMEOUT_MS = 10_000;
/** Rest after a failed or cut link before it may be tried again. */
export const FAILURE_BACKOFF_MS = 5_000;
/** Reactions kept. */
export const MAX_REACTIONS = 100;

const OWNER = "adapt";

/** Drives fast-path links and adapt rules towards the current plan. */
export class AdaptLoop {
  settings: AdaptSettings;
  readonly pairs = new Map<HostPair, PairState>();
  readonly reactions: Reaction[] = [];
  readonly #overlay: Overlay;
  readonly #sent = new Map<string, { seq: number; key: string }>();
  readonly #applied = new Map<string, number>();
  readonly #resting = new Map<HostPair, number>();
  #seq = 0;
  #lastPlan: Plan | null = null;
  #pendingReaction: number | null = null;
  readonly #log = logger("adapt");
  /** Told of every fast-path phase change and every measured reaction. */
  onEvent: ((e: AdaptEvent) => void) | null = null;

  readonly #warmUntil: number;

  /**
   * @param options.warmupMs after the loop starts, links it adopts from the hosts are not
   *   removed for this long: a restarted proxy knows no traffic yet, and working links should
   *   not be torn down before VTTIF has had the time to see whether they are still wanted.
   */
  constructor(
    overlay: Overlay,
    settings: AdaptSettings,
    options: { warmupMs?: number; clock?: Clock } = {},
  ) {
    this.#overlay = overlay;
    this.settings = settings;
    this.#clock = options.clock ?? systemClock;
    this.#warmUntil = this.#clock.now() + (options.warmupMs ?? 0);
  }

  readonly #clock: Clock;

  /** The last plan computed (for the API's per-pair reasons). */
  get lastPlan(): Plan | null {
    return this.#lastPlan;
  }

  /** Called when a topology change is declared at `detectedAt` (ms). */
  onTopologyChange(detectedAt: number): void {
    this.#pendingReaction = detectedAt;
    this.reconcile(this.#clock.now());
  }

  /** Migrations measured: first frame on the new host -> rules updated on every host. */
  readonly moves: { mac: string; movedAt: number; settledAt: number; ms: number }[] = [];
  #pendingMoves: { mac: string; movedAt: number }[] = [];

  /**
   * A VM appeared behind another host: re-plan at once, so that rules towards its old host
   * are replaced everywhere, and measure how long that takes.
   */
  onVmMoved(mac: string, now: number): void {
    this.#pendingMoves.push({ mac, movedAt: now });
    // After the switch has finished with the frame that moved it (we are called from inside
    // Switch.forward, and the MAC table already has the new owner).
    queueMicrotask(() => this.reconcile(this.#clock.now()));
  }

  /** A host (re)joined: it gets its rule set anew. */
  onHostUp(host: string): void {
    this.#sent.delete(host);
    this.#applied.delete(host);
  }

  /** A host left: its links are gone. */
  onHostDown(host: string, now: number): void {
    this.#sent.delete(host);
    this.#applied.delete(host);
    for (const pair of this.pairs.keys()) {
      if (splitPair(pair).includes(host)) {
        this.pairs.delete(pair);
        const other = splitPair(pair).find((h) => h !== host)!;
        this.#send(other, { type: "peer-close", peer: host, reason: `${host} left the overlay` });
        this.#log.info("Fast path {pair} dropped: {host} left", { pair, host });
        this.onEvent?.({ type: "link", pair, phase: "closed", reason: `${host} left the overlay` });
      }
    }
    this.reconcile(now);
  }

  /** Handles a host's report about its fast paths or rules. */
  onHostMessage(host: string, msg: PeerState | RulesApplied, now: number): void {
    switch (msg.type) {
      case "rules-applied":
        if (msg.owner === OWNER) this.#applied.set(host, msg.seq);
        break;
      case "peer-up": {
        const pair = hostPair(host, msg.peer);
        let st = this.pairs.get(pair);
        if (!st) {
          // A link we did not ask for in this lifetime (the proxy restarted): adopt it; the
          // plan decides whether it stays.
          st = { pair, phase: "connecting", ends: new Set(), since: now, adopted: true };
          this.pairs.set(pair, st);
        }
        st.ends.add(host);
        if (st.phase === "connecting" && st.ends.size === 2) {
          st.phase = "up";
          st.since = now;
          this.#log.info("Fast path {pair} is up on both ends", { pair });
          this.onEvent?.({ type: "link", pair, phase: "up" });
        }
        break;
      }
      case "peer-down": {
        const pair = hostPair(host, msg.peer);
        const st = this.pairs.get(pair);
        if (!st) break;
        this.pairs.delete(pair);
        this.#resting.set(pair, now + FAILURE_BACKOFF_MS);
        this.onEvent?.({ type: "link", pair, phase: "down", reason: msg.reason ?? "" });
        this.#send(msg.peer, { type: "peer-close", peer: host, reason: `${host} lost the link` });
        this.#log.warn("Fast path {pair} went down ({reason}); its traffic is back on the star", {
          pair,
          reason: msg.reason ?? "",
        });
        break;
      }
      default:
        return;
    }
    this.reconcile(now);
  }

  /** Plans and acts; safe to call any time. */
  reconcile(now: number): void {
    const hosts = this.#overlay.hosts();
    for (const [pair, until] of this.#resting) if (until <= now) this.#resting.delete(pair);
    const eligible = new Set(
      [...hosts.keys()].filter((h) => this.#overlay.listenAddress(h) !== null),
    );
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
    const decision = new Map(p.decisions.map((d) => [d.pair, d]));

    for (const pair of p.toAdd) {
      if (this.#resting.has(pair)) continue;
      const [a, b] = splitPair(pair);
      const address = this.#overlay.listenAddress(b);
      const keyA = this.#overlay.keyOf(a);
      const keyB = this.#overlay.keyOf(b);
      if (!address || !keyA || !keyB) continue;
      const ticket = mintTicket();
      // Each end learns which sources the other may send before the link can exist.
      const vmHost = this.#overlay.vmHosts();
      this.#send(b, { type: "peer-macs", peer: a, change: "set", macs: vmsOf(vmHost, a) });
      this.#send(a, { type: "peer-macs", peer: b, change: "set", macs: vmsOf(vmHost, b) });
      this.#send(b, { type: "peer-expect", peer: a, key: keyA, ticket, ttlMs: CONNECT_TIMEOUT_MS });
      this.#send(a, { type: "peer-connect", peer: b, key: keyB, address, ticket });
      this.pairs.set(pair, { pair, phase: "connecting", ends: new Set(), since: now });
      this.onEvent?.({
        type: "link",
        pair,
        phase: "connecting",
        reason: decision.get(pair)?.reason ?? "",
      });
      this.#log.info("Adding fast path {pair}: {reason}", {
        pair,
        reason: decision.get(pair)?.reason ?? "",
      });
    }
    for (const pair of p.toRemove) {
      const st = this.pairs.get(pair);
      if (!st || st.phase === "draining") continue;
      // An adopted link survives the warm-up: the traffic that earned it is not known yet.
      if (st.adopted && now < this.#warmUntil && this.settings.enabled) continue;
      this.#log.info("Removing fast path {pair}: {reason}", {
        pair,
        reason: decision.get(pair)?.reason ?? "no traffic between these hosts any more",
      });
      if (st.phase === "connecting") {
        this.#closePair(pair, "no longer needed");
      } else {
        st.phase = "draining";
        st.since = now;
        this.onEvent?.({
          type: "link",
          pair,
          phase: "draining",
          reason: decision.get(pair)?.reason ?? "",
        });
      }
    }
    for (const st of this.pairs.values()) {
      if (st.phase === "connecting" && now - st.since > CONNECT_TIMEOUT_MS) {
        this.#log.warn("Fast path {pair} did not come up in time; staying on the star", {
          pair: st.pair,
        });
        this.#closePair(st.pair, "did not come up in time");
        this.#resting.set(st.pair, now + FAILURE_BACKOFF_MS);
      }
    }

    // Rules only for pairs whose link is up on both ends; draining pairs lose theirs first.
    const live = new Set(
      [...this.pairs.values()].filter((s) => s.phase === "up").map((s) => s.pair),
    );
    const wanted = new Map<string, WireRule[]>();
    for (const h of hosts.keys()) wanted.set(h, []);
    for (const r of p.rules) {
      const peer = peerOfPort(r.target);
      if (peer === null) continue;
      if (!live.has(hostPair(r.host, peer))) continue;
      wanted.get(r.host)?.push({
        src: r.src,
        dst: r.dst,
        target: r.target,
        owner: OWNER,
        reason: r.reason,
      });
    }
    for (const [h, rules] of wanted) {
      const key = JSON.stringify(rules);
      if (this.#sent.get(h)?.key === key) continue;
      const seq = ++this.#seq;
      if (this.#send(h, { type: "rules-set", owner: OWNER, seq, rules })) {
        this.#sent.set(h, { seq, key });
      }
    }
    for (const st of this.pairs.values()) {
      if (st.phase !== "draining") continue;
      if (!st.drainSeq) {
        st.drainSeq = new Map(splitPair(st.pair).map((h) => [h, this.#sent.get(h)?.seq ?? 0]));
      }
      const done = [...st.drainSeq].every(([h, seq]) =>
        (this.#applied.get(h) ?? -1) >= seq || !hosts.has(h)
      );
      if (done) this.#closePair(st.pair, "no longer needed");
    }

    if (this.#pendingMoves.length && this.#converged(p, hosts)) {
      for (const m of this.#pendingMoves) {
        const ms = now - m.movedAt;
        this.moves.push({ ...m, settledAt: now, ms });
        if (this.moves.length > MAX_REACTIONS) this.moves.shift();
        this.#log.info("VM {mac} moved; forwarding updated everywhere in {ms} ms", {
          mac: m.mac,
          ms,
        });
        this.onEvent?.({ type: "reaction", kind: "migration", mac: m.mac, ms });
      }
      this.#pendingMoves = [];
    }
    if (this.#pendingReaction !== null && this.#converged(p, hosts)) {
      const ms = now - this.#pendingReaction;
      this.reactions.push({
        detectedAt: this.#pendingReaction,
        activeAt: now,
        ms,
        links: p.links.length,
      });
      if (this.reactions.length > MAX_REACTIONS) this.reactions.shift();
      this.onEvent?.({
        type: "reaction",
        ms,
        links: p.links.length,
        detectedAt: this.#pendingReaction,
      });
      this.#log.info("Overlay adapted in {ms} ms: {links} fast paths, rules active on every host", {
        ms,
        links: p.links.length,
      });
      this.#pendingReaction = null;
    }
  }

  /** Runs `reconcile` every `intervalMs` until `signal` aborts. */
  run(signal: AbortSignal, intervalMs = 1000): Promise<void> {
    return new Promise((resolve) => {
      const t = this.#clock.every(intervalMs, () => this.reconcile(this.#clock.now()));
      signal.addEventListener("abort", () => {
        t.cancel();
        resolve();
      }, { once: true });
    });
  }

  /** True when every planned link is up and every host has applied its latest rule set. */
  #converged(p: Plan, hosts: ReadonlyMap<string, unknown>): boolean {
    for (const pair of p.links) {
      if (this.pairs.get(pair)?.phase !== "up") return false;
    }
    for (const h of hosts.keys()) {
      const sent = this.#sent.get(h);
      if (!sent || (this.#applied.get(h) ?? -1) < sent.seq) return false;
    }
    return true;
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

/** The VM MACs `vmHost` places behind `host`. */
function vmsOf(vmHost: ReadonlyMap<string, string>, host: string): string[] {
  const out: string[] = [];
  for (const [mac, h] of vmHost) if (h === host) out.push(mac);
  return out;
}
