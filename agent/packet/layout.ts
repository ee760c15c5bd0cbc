/**
 * The one packet layout inside the agent, whatever the device, the switch or the link:
 *
 *     offset  0   virtio_net_hdr          10 bytes   VNET_HDR_LEN (see device/vnet_header.ts)
 *     offset 10   Ethernet destination     6 bytes   DST_OFFSET
 *     offset 16   Ethernet source          6 bytes   SRC_OFFSET
 *     offset 22   EtherType                2 bytes   ETHERTYPE_OFFSET
 *     offset 24   IP packet or ARP   up to 65,535   L3_OFFSET (a GSO superframe too)
 *
 *     with one 802.1Q tag: TPID 0x8100 at 22, TCI at 24, the EtherType at 26, IP at 28
 *
 *     smallest packet  VNET_HDR_LEN + ETH_HLEN                     = 24  MIN_PACKET_BYTES
 *     largest packet   VNET_HDR_LEN + ETH_HLEN + VLAN_HLEN + 65535 = 65,563  MAX_PACKET_BYTES
 *
 * A TAP opened with IFF_VNET_HDR writes the header itself; a device without offloads (libpcap,
 * the in-memory device) reads the frame at {@linkcode VNET_HDR_LEN} behind a zeroed header. One
 * layout means the switch, the counters and the wire codec never ask where a packet came from,
 * and a superframe crosses the overlay whole. Every offset here counts from the start of the
 * packet (the header included), so code indexes a packet without adding the header by hand.
 *
 * @module
 */

/** Length of the virtio-net header (struct virtio_net_hdr, without num_buffers). */
export const VNET_HDR_LEN = 10;

/** Length of an untagged Ethernet header: destination, source, EtherType. */
export const ETH_HLEN = 14;

/** Length of one 802.1Q tag (TPID + TCI) between the source MAC and the EtherType. */
export const VLAN_HLEN = 4;

/** Offset of the Ethernet destination MAC in a packet. */
export const DST_OFFSET = VNET_HDR_LEN;
/** Offset of the Ethernet source MAC in a packet. */
export const SRC_OFFSET = VNET_HDR_LEN + 6;
/** Offset of the EtherType (or 802.3 length, or the 802.1Q TPID) in a packet. */
export const ETHERTYPE_OFFSET = VNET_HDR_LEN + 12;
/** Offset of the first byte after an untagged Ethernet header (ARP, IP) in a packet. */
export const L3_OFFSET = VNET_HDR_LEN + ETH_HLEN;

/** EtherType (TPID) of an 802.1Q tag. */
export const ETHERTYPE_VLAN = 0x8100;
/** EtherType of IPv4. */
export const ETHERTYPE_IPV4 = 0x0800;
/** EtherType of IPv6. */
export const ETHERTYPE_IPV6 = 0x86dd;

/**
 * Smallest packet the agent handles: the header and an Ethernet header. Anything shorter has no
 * addresses to switch on; the switch drops it and the wire codec refuses it.
 */
export const MIN_PACKET_BYTES = VNET_HDR_LEN + ETH_HLEN;

/**
 * Largest packet the agent handles: header + Ethernet header with one VLAN tag + an IP packet
 * of 65,535 bytes. Read buffers are this large so that a GSO superframe always fits.
 *
 * @example A frame's size on the wire, and where its addresses are
 * ```ts
 * import { DST_OFFSET, MAX_PACKET_BYTES, MIN_PACKET_BYTES, VNET_HDR_LEN } from "./layout.ts";
 * const packet = new Uint8Array(VNET_HDR_LEN + 60); // a minimum-size Ethernet frame
 * packet.fill(0xff, DST_OFFSET, DST_OFFSET + 6); // to broadcast
 * if (packet.length < MIN_PACKET_BYTES || packet.length > MAX_PACKET_BYTES) throw new Error();
 * ```
 */
export const MAX_PACKET_BYTES = VNET_HDR_LEN + ETH_HLEN + VLAN_HLEN + 65_535;
