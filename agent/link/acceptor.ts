/**
 * The front door of a listener (the proxy's join listener, a host's fast-path listener):
 * accepts connections and bounds what they may cost before anyone is authenticated.
 * Handshakes in flight are limited overall and per source address, so a slow or flooding
 * client cannot starve the hosts that join properly; every refusal is counted by reason; and
 * an accept that fails (out of descriptors, a reset) is counted and retried after a pause
 * instead of ending the loop for good.
 *
 *     listener ──accept──> over its source's limit? ──yes──> close, count
 *                 every slot taken? ──yes──> waiting room (FIFO, at most
 *                      │                     MAX_WAITING_PER_SLOT per slot and the per-source
 *                      │                     limit from one source; closed after
 *                      │                     `maxWaitMs`) ──a slot frees──┐
 *                      └──no──> serve(conn) <─────────────────────────────┘
 *                                  └──settles──> release the slot, admit the next waiting
 *
 * The waiting room paces a join storm: ten thousand hosts that dial at once are admitted as
 * fast as handshakes finish, at most `maxHandshakes` at a time (so the established hosts'
 * traffic keeps its share of the proxy), instead of being refused and coming back after
 * seconds of backoff. A waiting connection costs a descriptor and no read (Deno's TLS has
 * finished its side of the handshake at accept; the peer then waits for its first message).
 * When the room is full the loop stops accepting until it has space: the rest wait in the
 * kernel's listen backlog (and retry their SYNs), which costs nothing here, whereas every
 * accepted connection has already cost its TLS handshake. The room is not sized by the pace
 * of recent handshakes: in a storm the first ones are the
 * slowest (every connection's TLS runs at its accept), so a measured pace shrank the room
 * just when it was needed; one that cannot be served in time is closed after the wait, which
 * costs the host no more than a refusal would.
 *
 * @module
 */

import { type Clock, systemClock, type Timer } from "../clock.ts";

/** Handshake bounds, from the config. */
export interface AcceptorLimits {
  /** Handshakes in flight at once, from everyone. */
  maxHandshakes: number;
  /** Handshakes in flight at once from one source address (and waiting, apart). */
  maxHandshakesPerSource: number;
  /** How long a handshake may take. Default 5 s. */
  handshakeTimeout?: number;
  /**
   * How long a connection may wait for a slot; default half the handshake timeout, so that
   * it still has time for its handshake before a peer that dialed with that timeout gives up.
   * The proxy's join listener waits longer: hosts give a join `join-timeout`.
   */
  maxWaitMs?: number;
}

/**
 * Connections that may wait, per slot (each holds a descriptor and has cost its TLS
 * handshake): what the proxy serves in a few seconds of a storm, well within a host's wait.
 */
export const MAX_WAITING_PER_SLOT = 16;

/** Something that yields connections: a `Deno.Listener`, or a fake in tests. */
export interface ConnSource<C> {
  accept(): Promise<C>;
}

/** A connection in its handshake. */
interface Pending {
  source: string;
  conn: { close(): void };
  /** Its slot was given back (the handshake settled, or it was evicted). */
  released: boolean;
}

/** A connection waiting for a slot. */
interface Waiting {
  source: string;
  conn: { close(): void };
  /** Closes it when it waited too long. */
  timer: Timer;
  /** Serves it once it has a slot. */
  admit(): void;
  /** It left the waiting room (admitted, timed out, or the listener stopped). */
  gone: boolean;
}

/** How long to wait after a failed accept before the next (e.g. out of file descriptors). */
const ACCEPT_RETRY_MS = 100;

/** Admits connections within the limits and counts what it turns away. */
export class Acceptor {
  readonly #limits: AcceptorLimits;
  #pending = 0;
  readonly #pendingFrom = new Map<string, number>();
  /** Waiting for a slot, oldest first from `#head`; entries that left are skipped. */
  #waiting: Waiting[] = [];
  #head = 0;
  #waitingCount = 0;
  readonly #waitingFrom = new Map<string, number>();
  /** Connections refused before admission or dropped by the loop, by reason. */
  readonly refusals: Record<string, number> = {};
  /** Times the loop stopped accepting because the waiting room was full. */
  paused = 0;
  /** Wakes the loop paused on a full room. */
  #roomFreed: (() => void) | null = null;

  constructor(limits: AcceptorLimits) {
    this.#limits = limits;
  }

  /** Counts one refusal for `why`. */
  count(why: string): void {
    this.refusals[why] = (this.refusals[why] ?? 0) + 1;
  }

  /** Connections still in their handshake, oldest first, by source. */
  readonly #conns = new Map<string, Pending[]>();

  /** A handshake settled (or was evicted): its slot goes back, once, to the next waiting. */
  #settle(entry: Pending): void {
    if (entry.released) return;
    entry.released = true;
    this.release(entry.source);
    const left = (this.#conns.get(entry.source) ?? []).filter((e) => e !== entry);
    if (left.length) this.#conns.set(entry.source, left);
    else this.#conns.delete(entry.source);
    this.#admitWaiting();
  }

  /** Connections waiting for a handshake slot now. */
  get waiting(): number {
    return this.#waitingCount;
  }

  /**
   * Serves waiting connections, oldest first, while there are slots for their sources. Looks
   * at most a few slots' worth past sources that are at their limit, so a slot freed during a
   * storm costs O(1), not O(room).
   */
  #admitWaiting(): void {
    const limits = this.#limits;
    let blocked = 0;
    for (let i = this.#head; i < this.#waiting.length; i++) {
      if (this.#pending >= limits.maxHandshakes || blocked > 4 * limits.maxHandshakes) break;
      const w = this.#waiting[i];
      if (w.gone) continue;
      if ((this.#pendingFrom.get(w.source) ?? 0) >= limits.maxHandshakesPerSource) {
        blocked++;
        continue;
      }
      this.#unwait(w);
      w.admit();
    }
    while (this.#head < this.#waiting.length && this.#waiting[this.#head].gone) this.#head++;
    if (this.#head > 64 && this.#head * 2 > this.#waiting.length) {
      this.#waiting = this.#waiting.slice(this.#head).filter((w) => !w.gone);
      this.#head = 0;
    }
  }

  /** How many may wait at once. */
  get roomSize(): number {
    return MAX_WAITING_PER_SLOT * this.#limits.maxHandshakes;
  }

  get #maxWaitMs(): number {
    return this.#limits.maxWaitMs ?? (this.#limits.handshakeTimeout ?? 5_000) / 2;
  }

  /** Takes `w` out of the waiting room (once). */
  #unwait(w: Waiting): void {
    w.gone = true;
    w.timer.cancel();
    this.#waitingCount--;
    this.#roomFreed?.();
    this.#roomFreed = null;
    const left = (this.#waitingFrom.get(w.source) ?? 1) - 1;
    if (left > 0) this.#waitingFrom.set(w.source, left);
    else this.#waitingFrom.delete(w.source);
  }

  /**
   * Puts `conn` from `source` in the waiting room; false (counted) when the room is full or
   * its source already has as many waiting as it may have in flight.
   */
  #wait(
    source: string,
    conn: { close(): void },
    admit: () => void,
    clock: Clock,
    onRefused?: (source: string, why: string) => void,
  ): boolean {
    const limits = this.#limits;
    const why = this.#waitingCount >= this.roomSize
      ? "too many handshakes"
      : (this.#waitingFrom.get(source) ?? 0) >= limits.maxHandshakesPerSource
      ? "too many handshakes from one source"
      : null;
    if (why) {
      this.count(why);
      onRefused?.(source, why);
      return false;
    }
    const entry: Waiting = { source, conn, admit, gone: false, timer: { cancel() {} } };
    entry.timer = clock.after(this.#maxWaitMs, () => {
      if (entry.gone) return;
      this.#unwait(entry);
      this.count("waited too long");
      onRefused?.(source, "waited too long");
      closeQuietly(conn);
    });
    this.#waiting.push(entry);
    this.#waitingCount++;
    this.#waitingFrom.set(source, (this.#waitingFrom.get(source) ?? 0) + 1);
    return true;
  }

  /**
   * All handshake slots are taken and `source` wants one: if some other source holds at least
   * two slots more than `source`, its oldest handshake is closed to make room. A few addresses
   * that open and hold connections then cannot lock every other source out for the handshake
   * timeout; they only compete among themselves.
   */
  #makeRoom(source: string, onRefused?: (source: string, why: string) => void): void {
    const mine = this.#conns.get(source)?.length ?? 0;
    let victim: Pending | null = null;
    let most = mine + 1;
    for (const list of this.#conns.values()) {
      if (list.length > most) [victim, most] = [list[0], list.length];
    }
    if (victim === null) return;
    this.#settle(victim);
    this.count("evicted for another source");
    onRefused?.(victim.source, "evicted for another source");
    closeQuietly(victim.conn);
  }

  /** Handshakes in flight now. */
  get pending(): number {
    return this.#pending;
  }

  /**
   * Takes a handshake slot for `source`, or returns why not (and counts it). The slot is
   * given back with {@linkcode release}.
   *
   * @example
   * ```ts
   * import { Acceptor } from "./acceptor.ts";
   * const a = new Acceptor({ maxHandshakes: 10, maxHandshakesPerSource: 1 });
   * if (a.take("10.0.0.9") !== null) throw new Error("first is admitted");
   * if (a.take("10.0.0.9") !== "too many handshakes from one source") throw new Error();
   * a.release("10.0.0.9");
   * if (a.take("10.0.0.9") !== null) throw new Error("room again");
   * ```
   */
  take(source: string): string | null {
    const fromSource = this.#pendingFrom.get(source) ?? 0;
    const why = this.#pending >= this.#limits.maxHandshakes
      ? "too many handshakes"
      : fromSource >= this.#limits.maxHandshakesPerSource
      ? "too many handshakes from one source"
      : null;
    if (why) {
      this.count(why);
      return why;
    }
    this.#pending++;
    this.#pendingFrom.set(source, fromSource + 1);
    return null;
  }

  /** Gives back `source`'s slot once its handshake settled. */
  release(source: string): void {
    this.#pending--;
    const left = (this.#pendingFrom.get(source) ?? 1) - 1;
    if (left > 0) this.#pendingFrom.set(source, left);
    else this.#pendingFrom.delete(source);
  }

  /**
   * Accepts from `listener` until `signal` aborts: each connection within the limits goes to
   * `serve`, which calls `handshakeDone` once admission settled (the slot is given back then,
   * or at the latest when `serve` settles); the rest are closed. `sourceOf` names a
   * connection's source address.
   */
  async run<C extends { close(): void }>(
    listener: ConnSource<C>,
    handlers: {
      sourceOf(conn: C): string;
      /** A connection from `source` was turned away for `why` (already counted). */
      onRefused?(source: string, why: string): void;
      serve(conn: C, handshakeDone: () => void): Promise<void>;
      onAcceptError(e: Error): void;
      onServeError(e: Error): void;
      /** Whose time the pause after a failed accept takes. */
      clock?: Clock;
    },
    signal: AbortSignal,
  ): Promise<void> {
    const clock = handlers.clock ?? systemClock;
    // Whoever still waits when the listener stops is closed.
    signal.addEventListener("abort", () => {
      this.#roomFreed?.(); // a loop paused on a full room ends
      for (const w of this.#waiting) {
        if (w.gone) continue;
        this.#unwait(w);
        closeQuietly(w.conn);
      }
      this.#waiting = [];
      this.#head = 0;
    }, { once: true });
    while (!signal.aborted) {
      if (this.#waitingCount >= this.roomSize) {
        // A full room stops accepting: what is not accepted waits in the kernel's backlog
        // (then its SYN is retried), at no cost here. An accepted connection has already
        // cost its TLS handshake (Deno runs it at accept), refused or not: accepting only to
        // refuse, a 10,000-host storm spent more on refusals than on joins.
        this.paused++;
        await new Promise<void>((resolve) => this.#roomFreed = resolve);
        continue;
      }
      let conn: C;
      try {
        conn = await listener.accept();
      } catch (e) {
        if (signal.aborted || e instanceof Deno.errors.BadResource) return;
        this.count("accept failed");
        handlers.onAcceptError(e as Error);
        await clock.sleep(ACCEPT_RETRY_MS, signal);
        continue;
      }
      const source = handlers.sourceOf(conn);
      const serve = () => {
        this.#pending++;
        this.#pendingFrom.set(source, (this.#pendingFrom.get(source) ?? 0) + 1);
        const entry: Pending = { source, conn, released: false };
        const list = this.#conns.get(source) ?? [];
        list.push(entry);
        this.#conns.set(source, list);
        const done = () => this.#settle(entry);
        handlers.serve(conn, done).catch((e) => handlers.onServeError(e as Error)).finally(done);
      };
      if ((this.#pendingFrom.get(source) ?? 0) >= this.#limits.maxHandshakesPerSource) {
        // One address over its share is refused at once, as before: waiting is for a storm
        // of many sources, not for one that opens connections it does not finish.
        this.count("too many handshakes from one source");
        handlers.onRefused?.(source, "too many handshakes from one source");
        closeQuietly(conn);
        continue;
      }
      if (this.#pending >= this.#limits.maxHandshakes) this.#makeRoom(source, handlers.onRefused);
      if (this.#pending < this.#limits.maxHandshakes && this.#waitingCount === 0) {
        serve();
      } else if (!this.#wait(source, conn, serve, clock, handlers.onRefused)) {
        closeQuietly(conn);
      } else {
        this.#admitWaiting();
      }
    }
  }
}

function closeQuietly(conn: { close(): void }): void {
  try {
    conn.close();
  } catch { /* closed */ }
}
