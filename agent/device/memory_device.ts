/**
 * An in-memory {@linkcode Device} for unit tests and the in-process simulation: the test (or
 * the simulated VM) injects packets to be read, and sees what the agent wrote through the
 * `written` list or an `onWrite` hook. It behaves like the real devices where the switch can
 * tell: bounded input with a drop counter, the same packet layout, and software segmentation
 * of superframes when it is created without offload.
 *
 *     inject(frame) -> bounded queue (full: counted in inboundDropped) -> read(batch)
 *     write(packet) -> [offload? as is : toPlainFrames] -> onWrite(packet) or written[]
 *
 * @module
 */

import { type Device, type DeviceStats, newDeviceStats, type PacketBatch } from "./device.ts";
import { VNET_HDR_LEN } from "../packet/layout.ts";
import { PlainWriter, recordWrite } from "./plain_writer.ts";
import { type VnetHeader, writeVnetHeader } from "./vnet_header.ts";

/** Options of {@linkcode MemoryDevice}; every field has a default. */
export interface MemoryDeviceOptions {
  /** Name shown in logs and counters; default `mem0`. */
  name?: string;
  /** MTU used to cut superframes when `offload` is false; default 1500. */
  mtu?: number;
  /** Whether written superframes are kept whole (true) or cut into frames; default false. */
  offload?: boolean;
  /** Packets that may wait to be read; further injections are dropped. Default 256. */
  queueCapacity?: number;
  /**
   * Packets kept in `written` when there is no `onWrite` hook; further writes are dropped
   * like on a full device. Default 4096.
   */
  writtenCapacity?: number;
}

/**
 * A device made of two queues in memory.
 *
 * @example A frame injected by the test is read by the agent; what the agent writes is kept
 * ```ts
 * import { MemoryDevice } from "./memory_device.ts";
 * import { PacketBatch } from "./device.ts";
 * const device = new MemoryDevice({ name: "vm1" });
 * device.inject(new Uint8Array(60).fill(0xff, 0, 6)); // a broadcast frame
 * const batch = new PacketBatch(8, 2048);
 * const n = await device.read(batch, new AbortController().signal);
 * if (n !== 1 || batch.packet(0).length !== 70) throw new Error("read");
 * device.write(batch.packet(0));
 * if (device.written.length !== 1) throw new Error("write");
 * ```
 */
export class MemoryDevice implements Device {
  readonly name: string;
  readonly mtu: number;
  readonly offload: boolean;
  readonly stats: DeviceStats = newDeviceStats();
  /** Its reader waits for a promise that `inject` resolves, on the event loop's thread. */
  readonly waitMode = "event-loop";
  /**
   * Copies of the packets written (header + frame), oldest first, when `onWrite` is not set.
   * Tests may empty it (`written.length = 0`) to make room.
   */
  readonly written: Uint8Array[] = [];
  /**
   * Called with each packet written, instead of keeping it in `written`. The packet is a view
   * valid only during the call (copy it to keep it). Exceptions propagate to the writer: the
   * hook is test code.
   */
  onWrite: ((packet: Uint8Array) => void) | undefined = undefined;

  readonly #queue: (Uint8Array | undefined)[];
  #head = 0;
  #size = 0;
  #inboundDropped = 0;
  readonly #writtenCapacity: number;
  #closed = false;
  /** Resolves the pending read's wait; set only while a read waits. */
  #wake: (() => void) | undefined = undefined;
  readonly #writer = new PlainWriter(this, (packet) => this.#deliver(packet));

  constructor(options: MemoryDeviceOptions = {}) {
    const queueCapacity = options.queueCapacity ?? 256;
    const writtenCapacity = options.writtenCapacity ?? 4096;
    for (
      const [key, value] of [["queueCapacity", queueCapacity], [
        "writtenCapacity",
        writtenCapacity,
      ]] as const
    ) {
      if (!Number.isInteger(value) || value < 1) {
        throw new RangeError(
          `Cannot create memory device: ${key} must be an integer >= 1, got ${value}`,
        );
      }
    }
    this.name = options.name ?? "mem0";
    this.mtu = options.mtu ?? 1500;
    this.offload = options.offload ?? false;
    this.#queue = new Array(queueCapacity);
    this.#writtenCapacity = writtenCapacity;
  }

  /** Injections refused because the queue was full or the device closed. */
  get inboundDropped(): number {
    return this.#inboundDropped;
  }

  /** Packets waiting to be read. */
  get queued(): number {
    return this.#size;
  }

  /**
   * Queues an Ethernet frame to be read, behind a copy of `header` (zeroed when absent).
   * Returns false, counting it in {@linkcode inboundDropped}, when the queue is full.
   */
  inject(frame: Uint8Array, header?: VnetHeader): boolean {
    const packet = new Uint8Array(VNET_HDR_LEN + frame.length);
    if (header !== undefined) writeVnetHeader(packet, header);
    packet.set(frame, VNET_HDR_LEN);
    return this.#enqueue(packet);
  }

  /**
   * Queues a copy of a whole packet (virtio-net header + frame) to be read: what another
   * device's `onWrite` hands over when devices are wired together.
   */
  injectPacket(packet: Uint8Array): boolean {
    return this.#enqueue(packet.slice());
  }

  async read(batch: PacketBatch, signal: AbortSignal): Promise<number> {
    while (this.#size === 0) {
      if (this.#closed || signal.aborted) {
        batch.count = 0;
        return 0;
      }
      await this.#arrival(signal);
    }
    let count = 0;
    while (count < batch.capacity && this.#size > 0) {
      const packet = this.#queue[this.#head]!;
      const slot = batch.buffers[count];
      if (packet.length > slot.length) {
        throw new RangeError(
          `Cannot read from ${this.name}: a ${packet.length}-byte packet does not fit in a ` +
            `${slot.length}-byte slot`,
        );
      }
      this.#queue[this.#head] = undefined;
      this.#head = (this.#head + 1) % this.#queue.length;
      this.#size--;
      slot.set(packet);
      batch.lengths[count] = packet.length;
      this.stats.rxBytes += packet.length - VNET_HDR_LEN;
      count++;
    }
    batch.count = count;
    this.stats.rxPackets += count;
    return count;
  }

  write(packet: Uint8Array): boolean {
    return this.#writer.write(packet);
  }

  close(): void {
    this.#closed = true;
    this.#wake?.();
  }

  #enqueue(packet: Uint8Array): boolean {
    if (this.#closed || this.#size === this.#queue.length) {
      this.#inboundDropped++;
      return false;
    }
    this.#queue[(this.#head + this.#size) % this.#queue.length] = packet;
    this.#size++;
    this.#wake?.();
    return true;
  }

  #deliver(packet: Uint8Array): boolean {
    const full = this.onWrite === undefined && this.written.length >= this.#writtenCapacity;
    if (this.#closed || packet.length < VNET_HDR_LEN || full) {
      return recordWrite(this.stats, packet, false);
    }
    if (this.onWrite !== undefined) this.onWrite(packet);
    else this.written.push(packet.slice());
    return recordWrite(this.stats, packet, true);
  }

  /** Resolves at the next injection, close or abort. */
  #arrival(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        signal.removeEventListener("abort", done);
        this.#wake = undefined;
        resolve();
      };
      this.#wake = done;
      signal.addEventListener("abort", done);
    });
  }
}
