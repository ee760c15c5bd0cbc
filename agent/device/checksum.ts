/**
 * The Internet checksum arithmetic (RFC 1071) that software segmentation, checksum completion
 * and the description of captured frames all share.
 *
 * @module
 */

/**
 * Computes the Internet checksum (RFC 1071) of `bytes`: the one's-complement of the
 * one's-complement sum of its 16-bit big-endian words, an odd last byte padded with zero.
 *
 * Exported because every place that builds or checks IP, TCP or UDP headers needs the same
 * arithmetic; `initial` lets a caller fold in a sum it already has (a pseudo header, or the
 * partial sum a checksum field holds) without building a buffer for it.
 *
 * @param bytes the bytes to sum
 * @param initial an uncomplemented sum to add (any non-negative integer below 2^52), default 0
 * @returns the 16-bit checksum to store, big-endian, in the checksum field
 *
 * @example The RFC 1071 example, and an IPv4 header
 * ```ts
 * import { internetChecksum } from "./checksum.ts";
 * const rfc = new Uint8Array([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
 * if (internetChecksum(rfc) !== 0x220d) throw new Error("rfc 1071");
 * const ip = new Uint8Array([
 *   0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
 *   0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
 * ]);
 * if (internetChecksum(ip) !== 0xb861) throw new Error("ipv4 header");
 * ```
 */
export function internetChecksum(bytes: Uint8Array, initial = 0): number {
  return ~fold(initial + sum16(bytes, 0, bytes.length)) & 0xffff;
}

/** Sum of the 16-bit big-endian words of bytes[start, end), an odd last byte padded. */
export function sum16(bytes: Uint8Array, start: number, end: number): number {
  // At most 32 Ki words of at most 0xffff each per packet: far below 2^53, so no folding inside.
  let sum = 0;
  let i = start;
  const pairsEnd = end - ((end - start) & 1);
  for (; i < pairsEnd; i += 2) sum += (bytes[i] << 8) | bytes[i + 1];
  if (i < end) sum += bytes[i] << 8;
  return sum;
}

/** Folds a sum to 16 bits with end-around carry. */
export function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}
