/**
 * The virtio-net header (struct virtio_net_hdr from <linux/virtio_net.h>) that leads every
 * packet inside the agent. Fields are little-endian, as the TAP driver uses them on the
 * little-endian machines we run on (TUNSETVNETLE is not needed there).
 *
 *     offset 0  u8  flags        NEEDS_CSUM (1), DATA_VALID (2)
 *     offset 1  u8  gso_type     NONE (0), TCPV4 (1), UDP (3), TCPV6 (4), | ECN (0x80)
 *     offset 2  u16 hdr_len      bytes of headers to repeat in every segment
 *     offset 4  u16 gso_size     payload bytes per segment (the MSS for TCP)
 *     offset 6  u16 csum_start   where checksumming starts, from the Ethernet header
 *     offset 8  u16 csum_offset  where the checksum goes, from csum_start
 *
 * @module
 */

import { VNET_HDR_LEN } from "../packet/layout.ts";

/** The checksum at csum_start + csum_offset is a partial (pseudo-header) sum to complete. */
export const VNET_F_NEEDS_CSUM = 1;
/** The checksum was already verified. */
export const VNET_F_DATA_VALID = 2;

/** Not a superframe. */
export const VNET_GSO_NONE = 0;
/** TCP over IPv4 superframe. */
export const VNET_GSO_TCPV4 = 1;
/** UDP fragmentation offload (deprecated; never enabled by us). */
export const VNET_GSO_UDP = 3;
/** TCP over IPv6 superframe. */
export const VNET_GSO_TCPV6 = 4;
/** The ECN bit may be set on the superframe's TCP header (CWR on the first segment only). */
export const VNET_GSO_ECN = 0x80;

/** Decoded virtio-net header fields. */
export interface VnetHeader {
  flags: number;
  gsoType: number;
  hdrLen: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
}

/**
 * Reads the header at the start of `packet`.
 *
 * @example
 * ```ts
 * import { readVnetHeader } from "./vnet_header.ts";
 * const h = readVnetHeader(new Uint8Array([1, 1, 66, 0, 168, 5, 34, 0, 16, 0]));
 * if (h.gsoSize !== 1448 || h.csumStart !== 34) throw new Error("decode");
 * ```
 */
export function readVnetHeader(packet: Uint8Array): VnetHeader {
  if (packet.length < VNET_HDR_LEN) {
    throw new RangeError(
      `Cannot read virtio-net header: packet has ${packet.length} bytes, need ${VNET_HDR_LEN}`,
    );
  }
  return {
    flags: packet[0],
    gsoType: packet[1],
    hdrLen: packet[2] | (packet[3] << 8),
    gsoSize: packet[4] | (packet[5] << 8),
    csumStart: packet[6] | (packet[7] << 8),
    csumOffset: packet[8] | (packet[9] << 8),
  };
}

/**
 * Writes `h` into the first {@linkcode VNET_HDR_LEN} bytes of `packet`.
 *
 * @example
 * ```ts
 * import { readVnetHeader, writeVnetHeader } from "./vnet_header.ts";
 * const p = new Uint8Array(10);
 * writeVnetHeader(p, { flags: 1, gsoType: 4, hdrLen: 86, gsoSize: 1428, csumStart: 54, csumOffset: 16 });
 * if (readVnetHeader(p).gsoSize !== 1428) throw new Error("round trip");
 * ```
 */
export function writeVnetHeader(packet: Uint8Array, h: VnetHeader): void {
  packet[0] = h.flags;
  packet[1] = h.gsoType;
  packet[2] = h.hdrLen & 0xff;
  packet[3] = h.hdrLen >>> 8;
  packet[4] = h.gsoSize & 0xff;
  packet[5] = h.gsoSize >>> 8;
  packet[6] = h.csumStart & 0xff;
  packet[7] = h.csumStart >>> 8;
  packet[8] = h.csumOffset & 0xff;
  packet[9] = h.csumOffset >>> 8;
}

/**
 * True when the packet is a plain frame: no segmentation and no checksum left to fill in,
 * so any device can take it as it is.
 *
 * @example
 * ```ts
 * import { isPlainPacket } from "./vnet_header.ts";
 * if (!isPlainPacket(new Uint8Array(60))) throw new Error("zero header is plain");
 * ```
 */
export function isPlainPacket(packet: Uint8Array): boolean {
  return (packet[0] & VNET_F_NEEDS_CSUM) === 0 && (packet[1] & ~VNET_GSO_ECN) === VNET_GSO_NONE;
}
