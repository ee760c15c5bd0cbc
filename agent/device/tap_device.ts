/**
 * The TAP device: the agent creates a TAP interface (to be bridged with the VMs) and moves
 * packets through it with the virtio-net header always on, so the kernel's own header is the
 * agent's packet layout and a read lands straight in a batch slot.
 *
 *     read:  drain with synchronous reads until EAGAIN or the batch is full
 *            -> nothing? one non-blocking poll (at most WAIT_MS), then drain again
 *     write: offload, or a plain packet -> one synchronous write
 *            otherwise                  -> toPlainFrames -> one write per frame
 *
 * @module
 */

import { Tap } from "../../ffi/mod.ts";
import { type Device, type DeviceStats, newDeviceStats, type PacketBatch } from "./device.ts";
import { VNET_HDR_LEN } from "../packet/layout.ts";
import { PlainWriter, recordWrite } from "./plain_writer.ts";
import { DeviceWait } from "./device_wait.ts";
import type { ReadyWaiter } from "../../ffi/event_loop_poller.ts";

/** Longest single wait for the TAP to become readable; bounds how late an abort is noticed. */
const WAIT_MS = 200;

/** Options of {@linkcode TapDevice.open}. */
export interface TapDeviceOptions {
  /** Interface name (at most 15 bytes, `%d` allowed); the kernel picks `tapN` when absent. */
  name?: string;
  /** MTU to set on the interface. */
  mtu: number;
  /** Ethernet address to set (6 bytes, unicast); the kernel's random one when absent. */
  mac?: Uint8Array;
  /**
   * Ask the kernel for TSO/checksum-offloaded superframes (TUNSETOFFLOAD) and hand it such
   * packets as they are. When false, reads give MTU-sized frames with complete checksums, and
   * superframes written here are first cut up in software.
   */
  offload: boolean;
  /**
   * How the TAP is waited for when idle: the agent passes the one it built from `deviceWait`;
   * a poll on a worker thread when absent.
   */
  wait?: DeviceWait;
}

/**
 * A {@linkcode Device} over a TAP interface that this object creates and removes.
 *
 * @example Open, bring up, and read one batch (the TAP disappears on close)
 * ```ts
 * import { TapDevice } from "./tap_device.ts";
 * import { PacketBatch } from "./device.ts";
 * // Creating a TAP needs root (CAP_NET_ADMIN); without it there is nothing to show.
 * if (Deno.uid() === 0) {
 *   const device = TapDevice.open({ name: "vnet%d", mtu: 1500, offload: true });
 *   try {
 *     const batch = new PacketBatch(32);
 *     // Whatever the kernel sends the new interface within 100 ms; 0 when it stays quiet.
 *     const n = await device.read(batch, AbortSignal.timeout(100));
 *     console.log(`${device.name}: read ${n} packets`);
 *   } finally {
 *     device.close();
 *   }
 * }
 * ```
 */
export class TapDevice implements Device {
  readonly name: string;
  readonly mtu: number;
  readonly offload: boolean;
  readonly stats: DeviceStats = newDeviceStats();
  readonly #tap: Tap;
  readonly #wait: DeviceWait;
  readonly #ready: ReadyWaiter;
  readonly #writer = new PlainWriter(this, (packet) => this.#writeOne(packet));

  private constructor(tap: Tap, mtu: number, wait: DeviceWait) {
    this.#tap = tap;
    this.name = tap.name;
    this.mtu = mtu;
    this.offload = tap.offload;
    this.#wait = wait;
    this.#ready = wait.forDescriptor(tap.fd);
  }

  get waitMode(): string {
    return this.#wait.mode;
  }

  /**
   * Creates the TAP interface with the virtio-net header on, sets its MTU (and MAC) and
   * brings it up.
   *
   * @throws {RangeError} for a bad name, MTU or MAC.
   * @throws {SyscallError} when the kernel refuses (not root, no tun module, name in use).
   */
  static open(options: TapDeviceOptions): TapDevice {
    const tap = Tap.create({ name: options.name, vnetHdr: true, offload: options.offload });
    try {
      tap.setMtu(options.mtu);
      if (options.mac !== undefined) tap.setMac(options.mac);
      tap.setUp();
    } catch (e) {
      tap.close();
      throw e;
    }
    return new TapDevice(tap, options.mtu, options.wait ?? new DeviceWait("thread"));
  }

  async read(batch: PacketBatch, signal: AbortSignal): Promise<number> {
    const tap = this.#tap;
    while (!signal.aborted && !tap.closed) {
      let count = 0;
      while (count < batch.capacity) {
        // The kernel writes the virtio-net header itself: the packet starts at offset 0.
        const n = tap.readInto(batch.buffers[count], 0);
        if (n < 0) break;
        batch.lengths[count] = n;
        this.stats.rxBytes += n - VNET_HDR_LEN;
        count++;
      }
      if (count > 0) {
        batch.count = count;
        this.stats.rxPackets += count;
        return count;
      }
      await this.#ready.wait(WAIT_MS);
    }
    batch.count = 0;
    return 0;
  }

  write(packet: Uint8Array): boolean {
    return this.#writer.write(packet);
  }

  close(): void {
    this.#tap.close();
  }

  /** One synchronous write; a full queue (EAGAIN) or an error drops the packet. */
  #writeOne(packet: Uint8Array): boolean {
    let written = -1;
    if (!this.#tap.closed) {
      try {
        written = this.#tap.write(packet);
      } catch {
        // EINVAL (a header the kernel refuses), EIO (interface down): this packet only.
      }
    }
    return recordWrite(this.stats, packet, written >= 0);
  }
}
