/**
 * The proxy's front door: accepts connections and bounds what they may cost before anyone is
 * authenticated. Handshakes in flight are limited overall and per source address, so a slow or
 * flooding client cannot starve the hosts that join properly; every refusal is counted by
 * reason; and an accept that fails (out of descriptors, a reset) is counted and retried after
 * a pause instead of ending the loop for good.
 *
 *     listener ──accept──> over a limit? ──yes──> close, count
 *                               └──no──> serve(conn) ──settles──> release the slot
 *
 * @module
 */

/** Handshake bounds, from the config. */
export interface AcceptorLimits {
  /** Handshakes in flight at once, from everyone. */
  maxHandshakes: number;
  /** Handshakes in flight at once from one source address. */
  maxHandshakesPerSource: number;
}

/** Something that yields connections: a `Deno.Listener`, or a fake in tests. */
export interface ConnSource<C> {
  accept(): Promise<C>;
}

/** How long to wait after a failed accept before the next (e.g. out of file descriptors). */
const ACCEPT_RETRY_MS = 100;

/** Admits connections within the limits and counts what it turns away. */
export class Acceptor {
  readonly #limits: AcceptorLimits;
  #pending = 0;
  readonly #pendingFrom = new Map<string, number>();
  /** Connections refused before admission or dropped by the loop, by reason. */
  readonly refusals: Record<string, number> = {};

  constructor(limits: AcceptorLimits) {
    this.#limits = limits;
  }

  /** Counts one refusal for `why`. */
  count(why: string): void {
    this.refusals[why] = (this.refusals[why] ?? 0) + 1;
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
      serve(conn: C, handshakeDone: () => void): Promise<void>;
      onAcceptError(e: Error): void;
      onServeError(e: Error): void;
    },
    signal: AbortSignal,
  ): Promise<void> {
    while (!signal.aborted) {
      let conn: C;
      try {
        conn = await listener.accept();
      } catch (e) {
        if (signal.aborted || e instanceof Deno.errors.BadResource) return;
        this.count("accept failed");
        handlers.onAcceptError(e as Error);
        await new Promise((r) => setTimeout(r, ACCEPT_RETRY_MS));
        continue;
      }
      const source = handlers.sourceOf(conn);
      if (this.take(source) !== null) {
        try {
          conn.close();
        } catch { /* closed */ }
        continue;
      }
      let released = false;
      const done = () => {
        if (released) return;
        released = true;
        this.release(source);
      };
      handlers.serve(conn, done).catch((e) => handlers.onServeError(e as Error)).finally(done);
    }
  }
}
