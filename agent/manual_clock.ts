/**
 * A clock that moves only when told: the fake shipped beside {@linkcode Clock} (as
 * wireguard-go ships `tuntest` beside its TUN). {@linkcode ManualClock.advance} fires every
 * timer that falls due, in time order, and between two timers lets the event loop run, so the
 * promise chains a timer starts (a report sent over an in-memory link, a handshake answered)
 * finish before the next timer fires, as they would in real time on an idle machine.
 *
 * @module
 */

import { type Clock, sleepOn, type Timer } from "./clock.ts";

interface Scheduled {
  at: number;
  seq: number;
  fn: () => void;
  /** Repeat period, or 0 for a one-shot timer. */
  every: number;
  cancelled: boolean;
}

/** Lets pending promise chains and I/O callbacks run; one real macrotask turn. */
function settle(): Promise<void> {
  return new Promise((r) => setTimeout(r, 0));
}

/**
 * A hand-driven clock.
 *
 * @example Ten seconds pass in an instant
 * ```ts
 * import { ManualClock } from "./manual_clock.ts";
 * const clock = new ManualClock(1_000_000);
 * let ticks = 0;
 * clock.every(1000, () => ticks++);
 * const woke = clock.sleep(5000).then(() => clock.now());
 * await clock.advance(10_000);
 * if (ticks !== 10 || await woke !== 1_005_000) throw new Error("timers fire in time order");
 * ```
 */
export class ManualClock implements Clock {
  #now: number;
  #seq = 0;
  #timers: Scheduled[] = [];
  readonly #origin: number;

  /**
   * @param start wall time to start at, ms since the epoch; by default the real time now, so
   *   that timestamps from outside (a file's mtime, a certificate's validity) line up.
   */
  constructor(start = Date.now()) {
    this.#now = start;
    this.#origin = start;
  }

  now(): number {
    return this.#now;
  }

  monotonic(): number {
    return this.#now - this.#origin;
  }

  after(ms: number, fn: () => void): Timer {
    return this.#schedule(ms, fn, 0);
  }

  every(ms: number, fn: () => void): Timer {
    return this.#schedule(ms, fn, Math.max(1, ms));
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return sleepOn(this, ms, signal);
  }

  /** Timers not yet fired or cancelled. */
  get pending(): number {
    return this.#timers.filter((t) => !t.cancelled).length;
  }

  /**
   * Moves time forward by `ms`, firing due timers in order (ties in scheduling order), and
   * lets the event loop settle after each.
   */
  async advance(ms: number): Promise<void> {
    if (!(ms >= 0)) throw new RangeError(`Cannot advance a clock by ${ms} ms: give ms >= 0`);
    const end = this.#now + ms;
    await settle();
    for (let t = this.#next(end); t !== null; t = this.#next(end)) {
      this.#now = Math.max(this.#now, t.at);
      if (t.every > 0) t.at += t.every;
      else t.cancelled = true;
      t.fn();
      await settle();
    }
    this.#now = end;
    this.#timers = this.#timers.filter((t) => !t.cancelled);
  }

  /**
   * Advances in steps of `stepMs` until `cond` holds; throws naming `what` once `maxMs` of
   * clock time passed without it.
   */
  async advanceUntil(
    cond: () => boolean,
    what: string,
    options: { stepMs?: number; maxMs?: number } = {},
  ): Promise<void> {
    const step = options.stepMs ?? 10;
    const max = options.maxMs ?? 60_000;
    for (let spent = 0; !cond(); spent += step) {
      if (spent >= max) throw new Error(`timed out waiting for ${what} (${max} ms of clock time)`);
      await this.advance(step);
    }
  }

  #schedule(ms: number, fn: () => void, every: number): Timer {
    const t: Scheduled = {
      at: this.#now + Math.max(0, ms),
      seq: this.#seq++,
      fn,
      every,
      cancelled: false,
    };
    this.#timers.push(t);
    return { cancel: () => t.cancelled = true };
  }

  /** The earliest live timer due by `end`, or null. */
  #next(end: number): Scheduled | null {
    let best: Scheduled | null = null;
    for (const t of this.#timers) {
      if (t.cancelled || t.at > end) continue;
      if (best === null || t.at < best.at || (t.at === best.at && t.seq < best.seq)) best = t;
    }
    return best;
  }
}
