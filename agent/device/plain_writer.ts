/**
 * The write side shared by every device: a packet the device can take goes out as it is; one
 * it cannot take (a superframe, a pending checksum, for a device without offloads) is first
 * turned into plain frames in software; every outcome is counted once.
 *
 * @module
 */

import type { DeviceStats } from "./device.ts";
import { VNET_HDR_LEN } from "../packet/layout.ts";
import { toPlainFrames } from "./segment.ts";
import { isPlainPacket } from "./vnet_header.ts";

/**
 * Counts one write attempt of `packet` in `stats`; returns `ok`.
 *
 * @example
 * ```ts
 * import { recordWrite } from "./plain_writer.ts";
 * import { newDeviceStats } from "./device.ts";
 * const s = newDeviceStats();
 * recordWrite(s, new Uint8Array(70), true);
 * recordWrite(s, new Uint8Array(70), false);
 * if (s.txPackets !== 1 || s.txBytes !== 60 || s.txDropped !== 1) throw new Error();
 * ```
 */
export function recordWrite(stats: DeviceStats, packet: Uint8Array, ok: boolean): boolean {
  if (ok) {
    stats.txPackets++;
    stats.txBytes += packet.length - VNET_HDR_LEN;
  } else {
    stats.txDropped++;
  }
  return ok;
}

/**
 * Writes packets through `writeOne`, cutting superframes and completing checksums first unless
 * `offload` says the device takes them.
 *
 * @example A superframe-free packet goes straight through
 * ```ts
 * import { PlainWriter } from "./plain_writer.ts";
 * import { newDeviceStats } from "./device.ts";
 * const seen: number[] = [];
 * const w = new PlainWriter({ mtu: 1500, offload: false, stats: newDeviceStats() }, (p) => {
 *   seen.push(p.length);
 *   return true;
 * });
 * if (!w.write(new Uint8Array(70)) || seen[0] !== 70) throw new Error();
 * ```
 */
export class PlainWriter {
  readonly #device: {
    readonly mtu: number;
    readonly offload: boolean;
    readonly stats: DeviceStats;
  };
  readonly #writeOne: (packet: Uint8Array) => boolean;
  #allWritten = true;
  /** Bound once, so segmenting allocates no closure per packet. */
  readonly #emit = (frame: Uint8Array): void => {
    if (!this.#writeOne(frame)) this.#allWritten = false;
  };

  /**
   * @param device whose MTU, offload flag and counters apply
   * @param writeOne writes one packet the device can take and counts it (see recordWrite)
   */
  constructor(
    device: { readonly mtu: number; readonly offload: boolean; readonly stats: DeviceStats },
    writeOne: (packet: Uint8Array) => boolean,
  ) {
    this.#device = device;
    this.#writeOne = writeOne;
  }

  /** Writes `packet`; false when it, or any frame cut from it, was dropped. */
  write(packet: Uint8Array): boolean {
    if (this.#device.offload || isPlainPacket(packet)) return this.#writeOne(packet);
    this.#allWritten = true;
    if (!toPlainFrames(packet, this.#device.mtu, this.#emit)) {
      this.#device.stats.txDropped++;
      return false;
    }
    this.#device.stats.txSegmented++;
    return this.#allWritten;
  }
}
