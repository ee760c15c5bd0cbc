/**
 * One timer for every link's keepalive on a clock: a proxy with ten thousand links wakes once
 * per period and checks them all, instead of arming ten thousand timers.
 *
 *     clock.every(period) ──> for each registered check: check(now, stalled)
 *
 * `now` is the clock's monotonic time, read once per tick for every check (ten thousand clock
 * reads a tick were a visible part of an idle proxy's work). `stalled` says the tick came
 * late: the event loop was held up (a long computation, a starved process), so what arrived
 * meanwhile may not have been read yet. A check must not
 * judge silence on such a tick (a link would look dead for the stall's length), only on the
 * next one, once the reads have run.
 *
 * A ticker exists while something is registered: its timer is armed by the first
 * {@linkcode Ticker.add} and cancelled when the last check is removed, so a clock that tests
 * drive by hand has no timer left once every link closed.
 *
 * @module
 */

import type { Clock, Timer } from "../clock.ts";

/** A tick this much later than due marks a stall. */
export const STALL_MS = 1_000;

/**
 * Checks at least this many links before "nobody was heard" means this end is behind (see
 * {@linkcode Ticker.heardNobodyFor}); fewer links may all fall silent for real.
 */
export const DEAF_MIN_LINKS = 8;

/** Tickers by clock and period; a clock's entry goes with the clock. */
const tickers = new WeakMap<Clock, Map<number, Ticker>>();

/** Calls every registered check each period of one clock. */
export class Ticker {
  readonly #clock: Clock;
  readonly #periodMs: number;
  readonly #checks = new Set<(now: number, stalled: boolean) => void>();
  #timer: Timer | null = null;
  #lastTick = 0;
  /** Ticks that came late, so far (how often the event loop was held up). */
  stalls = 0;
  /**
   * When any link of this ticker last received (monotonic; links set it as they read). When
   * many links are checked and none was heard for seconds, it is this end that stopped
   * reading (a saturated proxy whose TLS layer had already drained the kernel's buffers, so
   * that no unread bytes showed), not every peer at once.
   */
  heardAt = -Infinity;

  private constructor(clock: Clock, periodMs: number) {
    this.#clock = clock;
    this.#periodMs = periodMs;
  }

  /**
   * The ticker of `clock` with `periodMs`, shared by everyone who asks for the same pair.
   *
   * @example
   * ```ts
   * import { Ticker } from "./ticker.ts";
   * import { ManualClock } from "../manual_clock.ts";
   * const clock = new ManualClock();
   * let a = 0, b = 0;
   * const stopA = Ticker.of(clock, 100).add(() => a++);
   * const stopB = Ticker.of(clock, 100).add(() => b++);
   * await clock.advance(300);
   * stopA();
   * stopB();
   * if (a !== 3 || b !== 3 || clock.pending !== 0) throw new Error(`${a} ${b} ${clock.pending}`);
   * ```
   */
  static of(clock: Clock, periodMs: number): Ticker {
    let byPeriod = tickers.get(clock);
    if (!byPeriod) tickers.set(clock, byPeriod = new Map());
    let t = byPeriod.get(periodMs);
    if (!t) byPeriod.set(periodMs, t = new Ticker(clock, periodMs));
    return t;
  }

  /**
   * How long no link of this ticker has received (ms at monotonic `now`), when it checks at
   * least {@linkcode DEAF_MIN_LINKS} links; else 0. Long, it is this end that stopped reading.
   */
  heardNobodyFor(now: number): number {
    return this.#checks.size >= DEAF_MIN_LINKS ? now - this.heardAt : 0;
  }

  /** Checks registered now. */
  get size(): number {
    return this.#checks.size;
  }

  /** Calls `check` every period from now on; returns the function that stops it. */
  add(check: (now: number, stalled: boolean) => void): () => void {
    this.#checks.add(check);
    if (!this.#timer) {
      this.#lastTick = this.#clock.monotonic();
      this.#timer = this.#clock.every(this.#periodMs, () => {
        const now = this.#clock.monotonic();
        const stalled = now - this.#lastTick > this.#periodMs + STALL_MS;
        this.#lastTick = now;
        if (stalled) this.stalls++;
        // A check may remove itself (its link closed): a Set's iteration allows that.
        for (const c of this.#checks) c(now, stalled);
      });
    }
    return () => {
      if (!this.#checks.delete(check) || this.#checks.size > 0) return;
      this.#timer?.cancel();
      this.#timer = null;
    };
  }
}
