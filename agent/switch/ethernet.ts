/**
 * Ethernet views over the agent's packet layout (10-byte virtio-net header, then the frame; the
 * offsets are in `../packet/layout.ts`).
 *
 * A MAC address is a plain number (48 bits fit a double exactly), so tables key on it
 * without allocating a string per frame; strings appear only at the edges (config, API,
 * logs) through {@linkcode formatMac} and {@linkcode parseMac}.
 *
 * @module
 */

import { DST_OFFSET, ETHERTYPE_OFFSET, SRC_OFFSET } from "../packet/layout.ts";

/** A MAC address as a 48-bit unsigned integer. */
export type Mac = number;

/** ff:ff:ff:ff:ff:ff. */
export const BROADCAST_MAC: Mac = 0xffff_ffff_ffff;

const TWO_32 = 0x1_0000_0000;

/**
 * Reads the MAC at `offset` of `bytes`.
 *
 * @example
 * ```ts
 * import { formatMac, macAt } from "./ethernet.ts";
 * const b = new Uint8Array([0x02, 0, 0, 0, 0, 0x01]);
 * if (formatMac(macAt(b, 0)) !== "02:00:00:00:00:01") throw new Error("mac");
 * ```
 */
export function macAt(bytes: Uint8Array, offset: number): Mac {
  const hi = (bytes[offset] << 8) | bytes[offset + 1];
  const lo = ((bytes[offset + 2] << 24) | (bytes[offset + 3] << 16) | (bytes[offset + 4] << 8) |
    bytes[offset + 5]) >>> 0;
  return hi * TWO_32 + lo;
}

/** Writes `mac` at `offset` of `bytes`. */
export function writeMac(bytes: Uint8Array, offset: number, mac: Mac): void {
  const hi = Math.floor(mac / TWO_32);
  const lo = mac % TWO_32;
  bytes[offset] = hi >>> 8;
  bytes[offset + 1] = hi & 0xff;
  bytes[offset + 2] = lo >>> 24;
  bytes[offset + 3] = (lo >>> 16) & 0xff;
  bytes[offset + 4] = (lo >>> 8) & 0xff;
  bytes[offset + 5] = lo & 0xff;
}

/** The destination MAC of a packet. */
export function dstMac(packet: Uint8Array): Mac {
  return macAt(packet, DST_OFFSET);
}

/** The source MAC of a packet. */
export function srcMac(packet: Uint8Array): Mac {
  return macAt(packet, SRC_OFFSET);
}

/** The EtherType (or 802.3 length) of a packet. */
export function etherType(packet: Uint8Array): number {
  return (packet[ETHERTYPE_OFFSET] << 8) | packet[ETHERTYPE_OFFSET + 1];
}

/**
 * True for broadcast and multicast addresses (the I/G bit of the first octet is set):
 * such frames travel only on the star, never on fast-path links.
 *
 * @example
 * ```ts
 * import { BROADCAST_MAC, isGroupMac, parseMac } from "./ethernet.ts";
 * if (!isGroupMac(BROADCAST_MAC) || !isGroupMac(parseMac("33:33:00:00:00:01"))) throw new Error();
 * if (isGroupMac(parseMac("02:00:00:00:00:01"))) throw new Error("unicast");
 * ```
 */
export function isGroupMac(mac: Mac): boolean {
  return (Math.floor(mac / 0x100_0000_0000) & 1) === 1;
}

/**
 * Formats a MAC as lower-case colon-separated hex.
 *
 * @example
 * ```ts
 * import { formatMac } from "./ethernet.ts";
 * if (formatMac(0x0200_0000_00ab) !== "02:00:00:00:00:ab") throw new Error();
 * ```
 */
export function formatMac(mac: Mac): string {
  return mac.toString(16).padStart(12, "0").replace(/(..)(?!$)/g, "$1:");
}

const MAC_RE =
  /^([0-9a-f]{2})([:-]?)([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})$/i;

/**
 * Parses `aa:bb:cc:dd:ee:ff` (or with `-`, or without separators).
 *
 * @throws {TypeError} naming the text and the expected form.
 * @example
 * ```ts
 * import { formatMac, parseMac } from "./ethernet.ts";
 * if (formatMac(parseMac("02-00-00-00-00-0A")) !== "02:00:00:00:00:0a") throw new Error();
 * ```
 */
export function parseMac(text: string): Mac {
  const m = MAC_RE.exec(text.trim());
  if (!m) {
    throw new TypeError(
      `Cannot parse MAC address "${text}": expected six hex octets such as 02:00:00:00:00:01`,
    );
  }
  return parseInt(m[1] + m[3] + m[4] + m[5] + m[6] + m[7], 16);
}
