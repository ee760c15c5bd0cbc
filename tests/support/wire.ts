/**
 * Encodes test streams in the link protocol: the preamble, then each message.
 *
 * @module
 */

import { HEADER_LEN, PREAMBLE_LEN, writeHeader, writePreamble } from "../../agent/link/wire.ts";

/** A stream of `messages` ([type, body] each) after the preamble. */
export function encodeStream(...messages: [number, Uint8Array][]): Uint8Array {
  const total = PREAMBLE_LEN + messages.reduce((n, [, b]) => n + HEADER_LEN + b.length, 0);
  const out = new Uint8Array(total);
  let at = writePreamble(out, 0);
  for (const [type, body] of messages) {
    writeHeader(out, at, type, body.length);
    out.set(body, at + HEADER_LEN);
    at += HEADER_LEN + body.length;
  }
  return out;
}
