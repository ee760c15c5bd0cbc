/**
 * The few pieces of DER (ITU-T X.690) that a leaf certificate is made of, written and read
 * without a general ASN.1 library. The proxy issues a certificate per joining host; building
 * it through an ASN.1 object model cost about 6 ms of the proxy's one thread per join, most of
 * a 10,000-host join storm. Here a certificate is a handful of byte concatenations.
 *
 * Pure: bytes in, bytes out. Only definite lengths, as DER requires.
 *
 * @module
 */

import { concatBytes } from "../../agent/bytes.ts";

/** Bytes on their own buffer (what WebCrypto takes). */
export type Bytes = Uint8Array<ArrayBuffer>;

/** Universal tags used by certificates. */
export const Tag = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  SEQUENCE: 0x30,
  SET: 0x31,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
} as const;

/**
 * One TLV: `tag`, the definite length of `parts` together, then `parts`.
 *
 * @example
 * ```ts
 * import { Tag, tlv } from "./der.ts";
 * const empty = tlv(Tag.SEQUENCE);
 * if (empty.toHex() !== "3000") throw new Error(empty.toHex());
 * ```
 */
export function tlv(tag: number, ...parts: Uint8Array[]): Bytes {
  const body = concatBytes(...parts);
  const n = body.length;
  const length = n < 0x80
    ? [n]
    : n < 0x100
    ? [0x81, n]
    : n < 0x10000
    ? [0x82, n >> 8, n & 0xff]
    : [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  return concatBytes(new Uint8Array([tag, ...length]), body);
}

/** A SEQUENCE of `items`. */
export const seq = (...items: Uint8Array[]): Bytes => tlv(Tag.SEQUENCE, ...items);

/**
 * A non-negative INTEGER from its big-endian magnitude: leading zero bytes dropped, one added
 * back when the top bit is set (DER's shortest two's-complement form).
 */
export function unsignedInteger(magnitude: Uint8Array): Bytes {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const bytes = magnitude.subarray(start);
  return bytes[0] & 0x80 ? tlv(Tag.INTEGER, new Uint8Array([0]), bytes) : tlv(Tag.INTEGER, bytes);
}

/** A small non-negative INTEGER. */
export function smallInteger(v: number): Bytes {
  return unsignedInteger(new Uint8Array([v >> 24, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff]));
}

/**
 * An OBJECT IDENTIFIER from its dotted form.
 *
 * @example
 * ```ts
 * import { oid } from "./der.ts";
 * if (oid("1.2.840.10045.4.3.2").toHex() !== "06082a8648ce3d040302") throw new Error("oid");
 * ```
 */
export function oid(dotted: string): Bytes {
  const arcs = dotted.split(".").map(Number);
  const out = [40 * arcs[0] + arcs[1]];
  for (const arc of arcs.slice(2)) {
    const groups = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) {
      groups.unshift((v & 0x7f) | 0x80);
    }
    out.push(...groups);
  }
  return tlv(Tag.OID, new Uint8Array(out));
}

/** A BIT STRING with no unused bits. */
export function bitString(bytes: Uint8Array): Bytes {
  return tlv(Tag.BIT_STRING, new Uint8Array([0]), bytes);
}

/** An OCTET STRING. */
export function octetString(bytes: Uint8Array): Bytes {
  return tlv(Tag.OCTET_STRING, bytes);
}

/** A UTF8String. */
export function utf8String(text: string): Bytes {
  return tlv(Tag.UTF8_STRING, new TextEncoder().encode(text));
}

/** BOOLEAN TRUE. */
export const TRUE: Bytes = new Uint8Array([Tag.BOOLEAN, 1, 0xff]);

/**
 * A certificate time (RFC 5280 4.1.2.5): UTCTime for 1950-2049, GeneralizedTime otherwise,
 * to the second, in UTC.
 */
export function time(ms: number): Bytes {
  const iso = new Date(Math.floor(ms / 1000) * 1000).toISOString(); // 2026-12-02T08:14:03.000Z
  const year = Number(iso.slice(0, 4));
  const digits = iso.slice(0, 19).replace(/[-T:]/g, "") + "Z"; // 20261202081403Z
  const ascii = (s: string) => new TextEncoder().encode(s);
  return year >= 1950 && year < 2050
    ? tlv(Tag.UTC_TIME, ascii(digits.slice(2)))
    : tlv(Tag.GENERALIZED_TIME, ascii(digits));
}

/** A context-specific tag: `[n]`, constructed (explicit, or a SEQUENCE's implicit form). */
export const contextConstructed = (n: number) => 0xa0 | n;
/** A context-specific primitive tag: `[n]` IMPLICIT over a primitive type. */
export const contextPrimitive = (n: number) => 0x80 | n;

/** One element of a DER buffer: where it starts, its tag, and its contents. */
export interface Element {
  tag: number;
  /** The whole TLV. */
  raw: Uint8Array;
  /** The contents only. */
  body: Uint8Array;
}

/**
 * The element at `at` of `der`.
 *
 * @throws {RangeError} when the bytes are not DER with a definite length inside the buffer.
 */
export function readElement(der: Uint8Array, at = 0): Element {
  if (at + 2 > der.length) throw new RangeError("DER element truncated");
  const tag = der[at];
  let length = der[at + 1];
  let header = 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 3 || at + 2 + count > der.length) {
      throw new RangeError("DER length not definite or too long");
    }
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + der[at + 2 + i];
    header += count;
  }
  const end = at + header + length;
  if (end > der.length) throw new RangeError("DER element runs past its buffer");
  return { tag, raw: der.subarray(at, end), body: der.subarray(at + header, end) };
}

/** The elements inside a constructed element's contents, in order. */
export function children(body: Uint8Array): Element[] {
  const out: Element[] = [];
  for (let at = 0; at < body.length;) {
    const e = readElement(body, at);
    out.push(e);
    at += e.raw.length;
  }
  return out;
}
