/**
 * A link's keepalive judgement, a pure core: from the link's traffic count and when it last
 * received and sent, at a given `now`, whether the peer has been silent past its limit and
 * whether this end should ping. The link (link.ts) does the I/O: it reads the counters, asks
 * the kernel about unread bytes before closing, and writes the PING.
 *
 *     check(now, traffic, lastRx, lastTx) ──> { silentMs | null, pingEvery | null }
 *     heardPing(nextMs)                       the pinger's word on its next PING
 *
 * A link that carries frames or control messages pings after `keepaliveMs` without hearing
 * the peer and is dead after `deadAfterMs`; once it has carried nothing but keepalives for
 * `keepaliveIdleMs`, it is idle and pings only every `keepaliveIdleMs` (dead after that plus
 * `deadAfterMs`), until traffic wakes it. The answering end (the proxy's end of a star link)
 * judges silence by the pinger's own word, not by its own view of the traffic, which a stall
 * of either process would skew by seconds.
 *
 * A check that sees no new traffic before {@linkcode Keepalive.quietUntil} returns at once:
 * until then nothing can happen (no ping due, no idle switch, no silence past its limit), so
 * a proxy's idle link is judged in full about once per idle interval, not four times a second.
 *
 * @module
 */

/** The keepalive's timing, from the link's options. */
export interface KeepaliveTimes {
  keepaliveMs: number;
  deadAfterMs: number;
  /** Idle links ping at this interval; absent: never idle. */
  keepaliveIdleMs?: number;
}

/** What one check found: reused by every check of a link (no allocation per check). */
export interface KeepaliveVerdict {
  /** How long the peer has been silent, when that is past its limit; else null. */
  silentMs: number | null;
  /** The limit it is past (meaningful when `silentMs` is set). */
  limitMs: number;
  /** Ping now, announcing this interval until the next PING; null: no ping due. */
  pingEvery: number | null;
}

/** The keepalive state of one end of a link. */
export class Keepalive {
  readonly #times: KeepaliveTimes;
  /** Whether this end pings: not the proxy's end of a star link (its host pings). */
  readonly #pings: boolean;
  /** Frames and control messages, as of the last check. */
  #traffic = 0;
  /** When traffic was last seen by a check. */
  #lastActive: number;
  /** When the link last woke from idle: silence before it does not count against it. */
  #wokeAt = -Infinity;
  /** This end's idle mode (a pinging end decides it from its traffic). */
  #idle = false;
  /** The interval the peer's last PING announced, when longer than `keepaliveMs` (idle). */
  #peerIdleMs: number | null = null;
  #quietUntil = 0;
  readonly #verdict: KeepaliveVerdict = { silentMs: null, limitMs: 0, pingEvery: null };

  /**
   * @example An idle pinging end pings once per idle interval
   * ```ts
   * import { Keepalive } from "./keepalive.ts";
   * const k = new Keepalive(true, { keepaliveMs: 1000, deadAfterMs: 3000, keepaliveIdleMs: 10_000 }, 0);
   * let pings = 0, lastTx = 0;
   * for (let now = 250; now <= 60_000; now += 250) {
   *   if (k.check(now, 0, now, lastTx).pingEvery !== null) pings++, lastTx = now;
   * }
   * if (!k.idle || pings < 10 || pings > 16) throw new Error(`${pings}`);
   * ```
   */
  constructor(pings: boolean, times: KeepaliveTimes, now: number) {
    this.#pings = pings;
    this.#times = times;
    this.#lastActive = now;
  }

  /** True while the link carries nothing but keepalives. */
  get idle(): boolean {
    return this.#pings ? this.#idle : this.#peerIdleMs !== null;
  }

  /** Until then, a check without new traffic finds nothing (see the module doc). */
  get quietUntil(): number {
    return this.#quietUntil;
  }

  /**
   * The peer's PING said its next one comes within `nextMs`: longer than `keepaliveMs` means
   * it is idle, believed up to `keepaliveIdleMs`.
   */
  heardPing(nextMs: number): void {
    const t = this.#times;
    this.#peerIdleMs = nextMs > t.keepaliveMs
      ? Math.min(nextMs, t.keepaliveIdleMs ?? t.keepaliveMs)
      : null;
    // The peer's word changes when silence counts: the next check is a full one.
    this.#quietUntil = 0;
  }

  /**
   * One check at monotonic `now`, with the link's frames and control messages so far
   * (`traffic`) and when it last received and sent. The verdict is valid until the next call.
   */
  check(now: number, traffic: number, lastRx: number, lastTx: number): KeepaliveVerdict {
    const v = this.#verdict;
    v.silentMs = v.pingEvery = null;
    if (traffic === this.#traffic && now < this.#quietUntil) return v;
    const t = this.#times;
    const idleMs = t.keepaliveIdleMs ?? t.keepaliveMs;
    let changed = false;
    if (traffic !== this.#traffic) {
      this.#traffic = traffic;
      this.#lastActive = now;
      // Awake again: the peer (woken by this traffic, or its sender) pings within keepalive.
      if (this.#idle || this.#peerIdleMs !== null) this.#wokeAt = now;
      changed = this.#idle;
      this.#idle = false;
      this.#peerIdleMs = null;
    } else if (
      this.#pings && !this.#idle && idleMs > t.keepaliveMs && now - this.#lastActive >= idleMs
    ) {
      this.#idle = changed = true;
    }
    // Silence is judged by when the pinging end said it would ping next.
    const quietMs = this.#pings ? (this.#idle ? idleMs : null) : this.#peerIdleMs;
    const silent = quietMs === null ? now - Math.max(lastRx, this.#wokeAt) : now - lastRx;
    const limit = quietMs === null ? t.deadAfterMs : quietMs + t.deadAfterMs;
    // Receiving only moves these deadlines later; a PING that changes them resets it.
    this.#quietUntil = now - silent + limit;
    if (silent > limit) v.silentMs = silent, v.limitMs = limit;
    if (!this.#pings) return v;
    const every = this.#idle ? idleMs : t.keepaliveMs;
    // A change of mode is told at once: the peer's expectation follows this end's word.
    if (changed || now - lastTx >= every || now - lastRx >= every) v.pingEvery = every;
    const pingAt = Math.min(lastTx, lastRx) + every;
    const idleAt = this.#idle || idleMs <= t.keepaliveMs ? Infinity : this.#lastActive + idleMs;
    this.#quietUntil = Math.min(this.#quietUntil, pingAt, idleAt);
    return v;
  }
}
