/**
 * Frame builders shared by tests: packets in the agent's layout (10-byte zero virtio-net
 * header + Ethernet frame).
 *
 * @module
 */

import { VNET_HDR_LEN } from "../../agent/packet/layout.ts";
import { type Mac, writeMac } from "../../agent/switch/ethernet.ts";

/** A packet from `src` to `dst` with `payloadBytes` of payload (EtherType 0x0800). */
export function packet(dst: Mac, src: Mac, payloadBytes = 46, etherType = 0x0800): Uint8Array {
  const p = new Uint8Array(VNET_HDR_LEN + 14 + payloadBytes);
  writeMac(p, VNET_HDR_LEN, dst);
  writeMac(p, VNET_HDR_LEN + 6, src);
  p[VNET_HDR_LEN + 12] = etherType >> 8;
  p[VNET_HDR_LEN + 13] = etherType & 0xff;
  for (let i = 0; i < payloadBytes; i++) p[VNET_HDR_LEN + 14 + i] = i & 0xff;
  return p;
}

/** The Ethernet frame of a packet (header dropped), as MemoryDevice.inject takes it. */
export function frame(dst: Mac, src: Mac, payloadBytes = 46, etherType = 0x0800): Uint8Array {
  return packet(dst, src, payloadBytes, etherType).slice(VNET_HDR_LEN);
}

/** A locally administered unicast MAC numbered n. */
export function vmMac(n: number): Mac {
  return 0x0200_0000_0000 + n;
}
