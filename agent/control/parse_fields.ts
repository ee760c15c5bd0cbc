/**
 * The field validators every control-message parser shares. A peer's JSON is untrusted: each
 * field is checked for type, length and shape here, and anything else becomes a
 * `ProtocolError` naming the field, which closes that peer and never the process.
 *
 * @module
 */

import { ProtocolError } from "../link/wire.ts";
import { formatMac, parseMac } from "../switch/ethernet.ts";

/** A host name as the proxy issues them (DNS label). */
export const HOST_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** A key fingerprint: `SHA256:` and 43 base64url characters. */
export const KEY_FINGERPRINT = /^SHA256:[A-Za-z0-9_-]{43}$/;

/** A JSON object as a parser reads it. */
export type Fields = Record<string, unknown>;

/** The non-empty string `o[key]`, at most `max` long and matching `re` if given. */
export function text(o: Fields, key: string, max: number, re?: RegExp): string {
  const v = o[key];
  if (typeof v !== "string" || v.length === 0 || v.length > max || (re && !re.test(v))) {
    throw new ProtocolError(
      `Cannot accept control message ${String(o.type)}: bad or missing ${key}`,
    );
  }
  return v;
}

/** The non-negative safe integer `o[key]`. */
export function int(o: Fields, key: string): number {
  const v = o[key];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    throw new ProtocolError(
      `Cannot accept control message ${String(o.type)}: bad or missing ${key}`,
    );
  }
  return v;
}

/** A MAC in canonical text, or null for "any" (`null`, `"*"` or absent). */
export function macOrAny(v: unknown, field: string): string | null {
  if (v === null || v === "*" || v === undefined) return null;
  if (typeof v !== "string") {
    throw new ProtocolError(`Cannot accept control message: ${field} is not a MAC`);
  }
  try {
    return formatMac(parseMac(v));
  } catch (e) {
    throw new ProtocolError(`Cannot accept control message: ${(e as Error).message}`);
  }
}

/** A MAC in canonical text that must be there; `missing` is the refusal when it is not. */
export function requiredMac(v: unknown, field: string, missing: string): string {
  const mac = macOrAny(v, field);
  if (mac === null) throw new ProtocolError(missing);
  return mac;
}

/** A short free-text field (a reason), cut to `max`; absent is empty. */
export function note(v: unknown, max: number): string {
  return String(v ?? "").slice(0, max);
}
