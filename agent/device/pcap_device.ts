/**
 * The libpcap device: attaches the agent to an existing interface (a VM's bridge or veth)
 * by capturing what arrives on it and injecting what the overlay delivers. It has no
 * offloads: captured frames get a zeroed virtio-net header, and packets that need
 * segmentation or a checksum are finished in software before injection.
 *
 *     read:  drain pcap_next_ex into slots at offset 10 until none is ready or the batch is full
 *            -> nothing? one non-blocking poll (at most WAIT_MS), then drain again
 *     write: plain packet -> inject the frame; otherwise toPlainFrames -> inject each frame
 *
 * Only inbound frames are captured, so what we inject never comes back to us.
 *
 * @module
 */

import { PcapHandle, type PcapStats } from "../../ffi/mod.ts";
import { type Device, type DeviceStats, newDeviceStats, type PacketBatch } from "./device.ts";
import { MAX_PACKET_BYTES, VNET_HDR_LEN } from "../packet/layout.ts";
import { PlainWriter, recordWrite } from "./plain_writer.ts";
import { markCapturedOffloads } from "./capture_offload.ts";
import { DeviceWait } from "./device_wait.ts";
import type { ReadyWaiter } from "../../ffi/event_loop_poller.ts";

/** Longest single wait for a frame; bounds how late an abort is noticed. */
const WAIT_MS = 200;
/** Captured bytes per frame: whatever fits in a packet slot after the header. */
const SNAPLEN = MAX_PACKET_BYTES - VNET_HDR_LEN;

/** Options of {@linkcode PcapDevice.open}. */
export interface PcapDeviceOptions {
  /** The interface to attach to. */
  iface: string;
  /** MTU of the attached network; packets written are cut to fit it. */
  mtu: number;
  /** Extra BPF filter (tcpdump syntax) on what is captured. */
  filter?: string;
  /** Kernel capture ring size in bytes (libpcap's default when absent). */
  bufferBytes?: number;
  /**
   * How the capture is waited for when idle: the agent passes the one it built from
   * `deviceWait`; a poll on a worker thread when absent.
   */
  wait?: DeviceWait;
}

/**
 * A {@linkcode Device} over a promiscuous, inbound-only libpcap capture.
 *
 * @example Attach to loopback and read the SYN of a connection to ourselves
 * ```ts
 * import { PcapDevice } from "./pcap_device.ts";
 * import { PacketBatch } from "./device.ts";
 * import { VNET_HDR_LEN } from "../packet/layout.ts";
 * // Capturing needs root (CAP_NET_RAW); without it there is nothing to show.
 * if (Deno.uid() === 0) {
 *   const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 *   const port = listener.addr.port;
 *   // A VM's bridge or veth in real use; `filter` keeps other loopback traffic out.
 *   const device = PcapDevice.open({
 *     iface: "lo",
 *     mtu: 65_536,
 *     filter: `tcp dst port ${port}`,
 *   });
 *   try {
 *     (await Deno.connect({ hostname: "127.0.0.1", port })).close();
 *     const batch = new PacketBatch(32);
 *     const n = await device.read(batch, AbortSignal.timeout(5000));
 *     // Each packet is a zeroed virtio-net header, then the captured frame.
 *     if (n === 0 || batch.packet(0).length < VNET_HDR_LEN + 54) throw new Error("no SYN");
 *   } finally {
 *     device.close();
 *     listener.close();
 *   }
 * }
 * ```
 */
export class PcapDevice implements Device {
  readonly name: string;
  readonly mtu: number;
  readonly offload = false;
  readonly stats: DeviceStats = newDeviceStats();
  readonly #capture: PcapHandle;
  readonly #wait: DeviceWait;
  readonly #ready: ReadyWaiter;
  #closed = false;
  readonly #writer = new PlainWriter(this, (packet) => this.#injectOne(packet));

  private constructor(capture: PcapHandle, mtu: number, wait: DeviceWait) {
    this.#capture = capture;
    this.name = capture.iface;
    this.mtu = mtu;
    this.#wait = wait;
    this.#ready = wait.forDescriptor(capture.fd);
  }

  get waitMode(): string {
    return this.#wait.mode;
  }

  /**
   * Starts capturing on `options.iface` (promiscuous, immediate, inbound only).
   *
   * @throws {PcapError} with libpcap's text (no such device, permission denied, bad filter).
   */
  static open(options: PcapDeviceOptions): PcapDevice {
    const capture = PcapHandle.open(options.iface, {
      snaplen: SNAPLEN,
      promisc: true,
      immediate: true,
      inboundOnly: true,
      bufferBytes: options.bufferBytes,
      filter: options.filter,
    });
    return new PcapDevice(capture, options.mtu, options.wait ?? new DeviceWait("thread"));
  }

  /** Counters of the capture itself (frames the kernel or libpcap dropped before us). */
  captureStats(): PcapStats {
    return this.#capture.stats();
  }

  async read(batch: PacketBatch, signal: AbortSignal): Promise<number> {
    while (!signal.aborted && !this.#closed) {
      let count = 0;
      while (count < batch.capacity) {
        const slot = batch.buffers[count];
        const n = this.#capture.next(slot, VNET_HDR_LEN);
        if (n <= 0) {
          if (n < 0) this.close(); // end of capture: nothing more will come
          break;
        }
        slot.fill(0, 0, VNET_HDR_LEN);
        batch.lengths[count] = VNET_HDR_LEN + n;
        // Captured TCP/UDP may hold partial checksums or be a superframe: say so.
        markCapturedOffloads(slot.subarray(0, VNET_HDR_LEN + n), this.mtu);
        this.stats.rxBytes += n;
        count++;
      }
      if (count > 0) {
        batch.count = count;
        this.stats.rxPackets += count;
        return count;
      }
      // End of capture (closed above): its descriptor is gone, nothing to wait for.
      if (this.#closed) break;
      await this.#ready.wait(WAIT_MS);
    }
    batch.count = 0;
    return 0;
  }

  write(packet: Uint8Array): boolean {
    return this.#writer.write(packet);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#capture.close();
  }

  /** Injects the frame behind the (plain) header; any failure drops this packet only. */
  #injectOne(packet: Uint8Array): boolean {
    let sent = -1;
    if (!this.#closed && packet.length > VNET_HDR_LEN) {
      try {
        sent = this.#capture.inject(packet.subarray(VNET_HDR_LEN));
      } catch {
        // Interface down, frame longer than the MTU allows: this packet only.
      }
    }
    return recordWrite(this.stats, packet, sent >= 0);
  }
}
