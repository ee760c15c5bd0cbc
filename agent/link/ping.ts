/**
 * The keepalive PING's body: the sender's monotonic clock (echoed back in the PONG, so the
 * round trip needs no clock agreement), the sender's last measured round trip, and within how
 * many ms its next PING comes (longer than `keepalive` when its link is idle). A peer of an
 * older build sends the clock alone.
 *
 *     PING body: f64 clock | f64 last RTT ms (-1: none) | f64 next ping within ms
 *
 * @module
 */

/** Bytes of a PING body that carries all three fields. */
export const PING_BYTES = 24;

/**
 * Writes PING bodies into one reused buffer.
 *
 * @example
 * ```ts
 * import { PingWriter, readPing } from "./ping.ts";
 * const body = new PingWriter().write(1000, 0.4, 10_000);
 * const p = readPing(body);
 * if (p?.rttMs !== 0.4 || p.nextMs !== 10_000) throw new Error("round trip");
 * ```
 */
export class PingWriter {
  readonly #body = new Uint8Array(PING_BYTES);
  readonly #view = new DataView(this.#body.buffer);

  /** The body for a PING sent at `now`; valid until the next call. */
  write(now: number, rttMs: number | null, nextMs: number): Uint8Array {
    this.#view.setFloat64(0, now);
    this.#view.setFloat64(8, rttMs ?? -1);
    this.#view.setFloat64(16, nextMs);
    return this.#body;
  }
}

/** What a PING says beyond its clock, or null for a short (older) one. */
export function readPing(body: Uint8Array): { rttMs: number | null; nextMs: number } | null {
  if (body.length < PING_BYTES) return null;
  const v = new DataView(body.buffer, body.byteOffset, PING_BYTES);
  const rtt = v.getFloat64(8);
  return { rttMs: rtt >= 0 && rtt < 3_600_000 ? rtt : null, nextMs: v.getFloat64(16) };
}
