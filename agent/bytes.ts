/**
 * Byte arrays joined end to end: certificates, proofs and images built from parts.
 *
 * @module
 */

/**
 * The concatenation of `parts`, on a buffer of its own.
 *
 * @example
 * ```ts
 * import { concatBytes } from "./bytes.ts";
 * const b = concatBytes(new Uint8Array([1]), new Uint8Array([2, 3]));
 * if (b.join() !== "1,2,3") throw new Error(b.join());
 * ```
 */
export function concatBytes(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
