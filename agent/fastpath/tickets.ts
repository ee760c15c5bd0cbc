/**
 * One-time tickets for fast-path links. The proxy mints a random ticket for a host pair and
 * gives it to both hosts over their authenticated uplinks; the dialing host presents it, the
 * accepting host consumes it. A ticket works once, for the named peer, before it expires:
 * a replayed, forged, stale or misattributed ticket is refused.
 *
 * Pure: time is passed in.
 *
 * @module
 */

/** Bytes of randomness in a ticket. */
export const TICKET_BYTES = 32;

/** A fresh ticket (base64url). */
export function mintTicket(): string {
  return crypto.getRandomValues(new Uint8Array(TICKET_BYTES)).toBase64({
    alphabet: "base64url",
    omitPadding: true,
  });
}

/** Why a ticket was refused. */
export type TicketRefusal = "unknown" | "expired" | "wrong-peer";

/**
 * The tickets a host expects, bounded.
 *
 * @example
 * ```ts
 * import { TicketBook } from "./tickets.ts";
 * const book = new TicketBook({ max: 10 });
 * book.expect("t1", "h2", 1000, 0);
 * if (book.consume("t1", "h2", 10) !== null) throw new Error("valid once");
 * if (book.consume("t1", "h2", 20) !== "unknown") throw new Error("no replay");
 * ```
 */
export class TicketBook {
  readonly #max: number;
  readonly #tickets = new Map<string, { peer: string; expiresAt: number }>();

  constructor(options: { max: number }) {
    this.#max = options.max;
  }

  /** Tickets waiting. */
  get size(): number {
    return this.#tickets.size;
  }

  /** Records that `peer` may present `ticket` until `now + ttlMs`. */
  expect(ticket: string, peer: string, ttlMs: number, now: number): void {
    this.sweep(now);
    // At the bound, the oldest expectation gives way (Map keeps insertion order).
    while (this.#tickets.size >= this.#max) {
      this.#tickets.delete(this.#tickets.keys().next().value!);
    }
    this.#tickets.set(ticket, { peer, expiresAt: now + ttlMs });
  }

  /** True when `ticket` is waiting (not consumed, not expired). */
  has(ticket: string, now: number): boolean {
    const t = this.#tickets.get(ticket);
    return t !== undefined && now <= t.expiresAt;
  }

  /** Uses `ticket` for `peer`; null when accepted, else why not. A refused ticket is spent too. */
  consume(ticket: string, peer: string, now: number): TicketRefusal | null {
    const t = this.#tickets.get(ticket);
    if (!t) return "unknown";
    this.#tickets.delete(ticket);
    if (now > t.expiresAt) return "expired";
    if (t.peer !== peer) return "wrong-peer";
    return null;
  }

  /** Drops expired tickets. */
  sweep(now: number): void {
    for (const [k, t] of this.#tickets) if (now > t.expiresAt) this.#tickets.delete(k);
  }
}
