/**
 * The device seam: where frames enter and leave the overlay on one machine.
 *
 * Every packet a device reads or writes has the agent's one layout (a 10-byte virtio-net header,
 * then the Ethernet frame, up to 64 KiB with GSO), drawn in `../packet/layout.ts`. A TAP opened
 * with IFF_VNET_HDR fills the header itself; a device without offloads (libpcap, a TAP without
 * IFF_VNET_HDR, the in-memory device) reads the frame behind a zeroed header. A superframe
 * crosses the overlay without being cut up unless the device that finally writes it cannot
 * take it.
 *
 * @module
 */

import { MAX_PACKET_BYTES } from "../packet/layout.ts";

/**
 * A batch of packet buffers that a device fills in one {@linkcode Device.read} call.
 *
 * The buffers are allocated once and reused for every read: the hot path allocates nothing
 * per frame. `packet(i)` is a view valid until the next read into the same batch; whoever
 * needs a packet longer must copy it (the link send queues do).
 *
 * @example Filling a batch by hand, as the in-memory device does
 * ```ts
 * import { PacketBatch } from "./device.ts";
 * import { VNET_HDR_LEN } from "../packet/layout.ts";
 * const batch = new PacketBatch(4, 2048);
 * batch.buffers[0].set([1, 2, 3], VNET_HDR_LEN);
 * batch.lengths[0] = VNET_HDR_LEN + 3;
 * batch.count = 1;
 * if (batch.packet(0).length !== 13) throw new Error("wrong length");
 * ```
 */
export class PacketBatch {
  /** Fixed buffers, one per slot; each is `bufferBytes` long. */
  readonly buffers: Uint8Array[];
  /** Bytes used in each slot, header included. */
  readonly lengths: Uint32Array;
  /** Slots filled by the last read. */
  count = 0;

  constructor(slots: number, bufferBytes: number = MAX_PACKET_BYTES) {
    if (!Number.isInteger(slots) || slots < 1) {
      throw new RangeError(`Cannot create packet batch: slots must be >= 1, got ${slots}`);
    }
    this.buffers = Array.from({ length: slots }, () => new Uint8Array(bufferBytes));
    this.lengths = new Uint32Array(slots);
  }

  /** Number of slots. */
  get capacity(): number {
    return this.buffers.length;
  }

  /** The i-th packet of the last read (header + frame), as a view into its slot. */
  packet(i: number): Uint8Array {
    return this.buffers[i].subarray(0, this.lengths[i]);
  }
}

/** Counters every device keeps; they only grow. */
export interface DeviceStats {
  /** Packets read from the device. */
  rxPackets: number;
  /** Bytes read, virtio-net header excluded. */
  rxBytes: number;
  /** Packets written to the device. */
  txPackets: number;
  /** Bytes written, virtio-net header excluded. */
  txBytes: number;
  /** Packets that could not be written (device full, error, malformed); each is counted once. */
  txDropped: number;
  /** Superframes cut into MTU-sized frames in software because the device cannot take them. */
  txSegmented: number;
}

/** A fresh zeroed {@linkcode DeviceStats}. */
export function newDeviceStats(): DeviceStats {
  return { rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0, txDropped: 0, txSegmented: 0 };
}

/**
 * An attachment to a VM network: a TAP device, a captured interface, or an in-memory fake.
 *
 * One owner reads (the device loop); writes come from the same event loop, synchronously.
 */
export interface Device {
  /** Interface name (e.g. `vnet0`) or a descriptive name for fakes. */
  readonly name: string;
  /** MTU of the attached network, in bytes of IP payload. */
  readonly mtu: number;
  /**
   * True when the device takes and gives GSO superframes and checksum-offloaded packets,
   * so {@linkcode write} may be handed a packet whose header asks for segmentation.
   */
  readonly offload: boolean;
  /** Counters; they only grow. */
  readonly stats: DeviceStats;
  /**
   * How an idle device is waited for, for status pages: `event-loop`, `thread`, or
   * `thread (fallback: <reason>)` (see `device_wait.ts`).
   */
  readonly waitMode: string;

  /**
   * Fills `batch` with at least one packet, waiting while none is ready; returns the count.
   * Resolves to 0 only when `signal` aborts or the device is closed.
   */
  read(batch: PacketBatch, signal: AbortSignal): Promise<number>;

  /**
   * Writes one packet (header + frame). Never throws for a bad or undeliverable packet:
   * it is dropped and counted in `stats.txDropped`, and `false` is returned.
   */
  write(packet: Uint8Array): boolean;

  /** Releases the device; a TAP the agent created disappears. Safe to call twice. */
  close(): void;
}
