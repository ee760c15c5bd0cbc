/**
 * libpcap bindings: capture the frames arriving on an interface and inject frames into it,
 * for hosts whose VMs cannot be given a TAP (the VM's interface is watched instead). The library
 * itself (symbols, loader, structure sizes, error texts) is in pcap_library.ts.
 *
 * @module
 */

import { PcapError } from "./errors.ts";
import { cString, readCString } from "./c_string.ts";
import { ReadyWaiter } from "./event_loop_poller.ts";
import {
  BPF_PROGRAM_BYTES,
  lastPcapError,
  pcap,
  PCAP_D_IN,
  PCAP_ERRBUF_SIZE,
  PCAP_ERROR,
  PCAP_ERROR_BREAK,
  PCAP_ERROR_PERM_DENIED,
  PCAP_NETMASK_UNKNOWN,
  PCAP_STAT_BYTES,
  PKTHDR_BYTES,
  PKTHDR_CAPLEN,
  statusText,
} from "./pcap_library.ts";

// Re-exported: the doctor and ffi/mod.ts load these from here.
export { checkLibpcap, LIBPCAP_CANDIDATES } from "./pcap_library.ts";

/** Options of {@linkcode PcapHandle.open}. */
export interface PcapOptions {
  /** Bytes kept of each frame; frames longer than this are cut. */
  snaplen: number;
  /** Put the interface in promiscuous mode, to see frames for every MAC address. */
  promisc: boolean;
  /** Deliver each frame as it arrives instead of batching them (lower latency). */
  immediate: boolean;
  /** Kernel ring size in bytes; libpcap's default (2 MiB) when absent. */
  bufferBytes?: number;
  /** A BPF filter in tcpdump syntax, e.g. `not ether src 02:00:00:00:00:01`. */
  filter?: string;
  /** Capture only frames arriving on the interface, never the ones sent from it. */
  inboundOnly: boolean;
}

/** Counters kept by libpcap and the kernel since the handle was opened. */
export interface PcapStats {
  /** Frames that passed the filter. */
  received: number;
  /** Frames dropped because the capture buffer was full. */
  dropped: number;
  /** Frames dropped by the interface or its driver (not always supported). */
  ifDropped: number;
}

/**
 * A live capture on one interface, opened non-blocking: {@linkcode next} returns at once and
 * {@linkcode waitReadable} waits for the next frame without blocking the event loop.
 *
 * @example Capture the SYN of a connection to ourselves on loopback
 * ```ts
 * import { PcapHandle } from "./pcap.ts";
 * // Capturing needs root (CAP_NET_RAW); without it there is nothing to show.
 * if (Deno.uid() === 0) {
 *   const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 *   const port = listener.addr.port;
 *   const capture = PcapHandle.open("lo", {
 *     snaplen: 65_535,
 *     promisc: false,
 *     immediate: true,
 *     inboundOnly: true,
 *     filter: `tcp dst port ${port}`,
 *   });
 *   try {
 *     (await Deno.connect({ hostname: "127.0.0.1", port })).close();
 *     const frame = new Uint8Array(65_535);
 *     let n = capture.next(frame, 0); // 0: nothing captured yet
 *     while (n === 0 && await capture.waitReadable(5000)) n = capture.next(frame, 0);
 *     // Ethernet (14), IPv4 (20), TCP (20 and options): byte 47 holds TCP's flags.
 *     if (n < 54 || (frame[47] & 0x02) === 0) throw new Error(`not a SYN: ${n} bytes`);
 *   } finally {
 *     capture.close();
 *     listener.close();
 *   }
 * }
 * ```
 */
export class PcapHandle {
  /** The capture's selectable descriptor: readable when {@linkcode next} has a frame. */
  readonly fd: number;
  #handle: Deno.PointerObject | null;
  readonly #iface: string;
  readonly #warning: string | undefined;
  readonly #waiter: ReadyWaiter;
  /** Where pcap_next_ex stores its two result pointers: [header, data]. */
  readonly #results = new BigUint64Array(2);
  readonly #headerOut = this.#results.subarray(0, 1);
  readonly #dataOut = this.#results.subarray(1, 2);
  /** A copy of the last struct pcap_pkthdr. */
  readonly #header = new Uint8Array(PKTHDR_BYTES);
  readonly #headerView = new DataView(this.#header.buffer);
  readonly #stat = new Uint8Array(PCAP_STAT_BYTES);
  readonly #statView = new DataView(this.#stat.buffer);

  private constructor(
    handle: Deno.PointerObject,
    fd: number,
    iface: string,
    warning: string | undefined,
  ) {
    this.#handle = handle;
    this.fd = fd;
    this.#iface = iface;
    this.#warning = warning;
    this.#waiter = new ReadyWaiter(fd);
  }

  /**
   * Opens and activates a capture on `iface`.
   *
   * @throws {PcapError} with libpcap's explanation (no such device, permission denied, a
   * filter that does not compile, ...).
   * @throws {Error} when libpcap cannot be loaded; the message lists every path tried.
   */
  static open(iface: string, options: PcapOptions): PcapHandle {
    const lib = pcap();
    const action = `open capture on ${iface}`;
    const errbuf = new Uint8Array(PCAP_ERRBUF_SIZE);
    const handle = lib.pcap_create(cString(iface), errbuf);
    if (handle === null) {
      throw new PcapError("pcap_create", PCAP_ERROR, action, readCString(errbuf));
    }
    try {
      const setting = (func: string, status: number) => {
        if (status !== 0) throw new PcapError(func, status, action, statusText(handle, status));
      };
      setting("pcap_set_snaplen", lib.pcap_set_snaplen(handle, options.snaplen));
      setting("pcap_set_promisc", lib.pcap_set_promisc(handle, options.promisc ? 1 : 0));
      setting(
        "pcap_set_immediate_mode",
        lib.pcap_set_immediate_mode(handle, options.immediate ? 1 : 0),
      );
      if (options.bufferBytes !== undefined) {
        setting("pcap_set_buffer_size", lib.pcap_set_buffer_size(handle, options.bufferBytes));
      }

      const status = lib.pcap_activate(handle);
      if (status < 0) {
        const hint = status === PCAP_ERROR_PERM_DENIED
          ? " Run as root or grant CAP_NET_RAW and CAP_NET_ADMIN."
          : "";
        throw new PcapError("pcap_activate", status, action, statusText(handle, status) + hint);
      }
      const warning = status > 0 ? statusText(handle, status) : undefined;

      if (lib.pcap_setnonblock(handle, 1, errbuf) < 0) {
        throw new PcapError("pcap_setnonblock", PCAP_ERROR, action, readCString(errbuf));
      }
      if (options.inboundOnly) {
        const r = lib.pcap_setdirection(handle, PCAP_D_IN);
        if (r < 0) throw new PcapError("pcap_setdirection", r, action, lastPcapError(handle));
      }
      if (options.filter !== undefined) setFilter(handle, options.filter, action);

      const fd = lib.pcap_get_selectable_fd(handle);
      if (fd < 0) {
        throw new PcapError("pcap_get_selectable_fd", fd, action, "no descriptor to poll");
      }
      return new PcapHandle(handle, fd, iface, warning);
    } catch (e) {
      lib.pcap_close(handle);
      throw e;
    }
  }

  /** The captured interface. */
  get iface(): string {
    return this.#iface;
  }

  /** The warning pcap_activate gave (e.g. promiscuous mode not supported), if any. */
  get warning(): string | undefined {
    return this.#warning;
  }

  /**
   * Copies the next captured frame into `into` at `offset`, without waiting. Returns its
   * captured length, 0 when none is ready, or -1 at the end of the capture.
   *
   * @throws {RangeError} when the frame does not fit after `offset` (open with a snaplen no
   * larger than the room you give).
   * @throws {PcapError} on a capture error (e.g. the interface went away).
   */
  next(into: Uint8Array, offset: number): number {
    const handle = this.#open("capture on");
    const r = pcap().pcap_next_ex(handle, this.#headerOut, this.#dataOut);
    if (r === 0) return 0;
    if (r === PCAP_ERROR_BREAK) return -1;
    if (r !== 1) {
      throw new PcapError("pcap_next_ex", r, `capture on ${this.#iface}`, lastPcapError(handle));
    }
    // Both pointers address libpcap's ring and stay valid until the next pcap_next_ex.
    Deno.UnsafePointerView.copyInto(Deno.UnsafePointer.create(this.#results[0])!, this.#header);
    const caplen = this.#headerView.getUint32(PKTHDR_CAPLEN, true);
    if (caplen > into.length - offset) {
      throw new RangeError(
        `Cannot capture on ${this.#iface}: a ${caplen}-byte frame does not fit in ` +
          `${into.length - offset} bytes; open with a smaller snaplen`,
      );
    }
    const data = Deno.UnsafePointer.create(this.#results[1])!;
    Deno.UnsafePointerView.copyInto(data, into.subarray(offset, offset + caplen));
    return caplen;
  }

  /**
   * Sends one Ethernet frame out of the interface; returns the bytes sent.
   *
   * @throws {PcapError} when the kernel refuses it (interface down, frame too long, ...).
   */
  inject(frame: Uint8Array): number {
    const handle = this.#open("inject into");
    const n = pcap().pcap_inject(handle, frame, BigInt(frame.length));
    if (n < 0) {
      throw new PcapError("pcap_inject", n, `inject into ${this.#iface}`, lastPcapError(handle));
    }
    return n;
  }

  /** Capture counters since the handle was opened. */
  stats(): PcapStats {
    const handle = this.#open("read statistics of");
    const r = pcap().pcap_stats(handle, this.#stat);
    if (r < 0) {
      throw new PcapError(
        "pcap_stats",
        r,
        `read statistics of ${this.#iface}`,
        lastPcapError(handle),
      );
    }
    return {
      received: this.#statView.getUint32(0, true),
      dropped: this.#statView.getUint32(4, true),
      ifDropped: this.#statView.getUint32(8, true),
    };
  }

  /**
   * Waits up to `timeoutMs` for a frame with one non-blocking poll on the capture descriptor.
   * Call it only after {@linkcode next} returned 0. False on timeout or once closed.
   */
  waitReadable(timeoutMs: number): Promise<boolean> {
    if (this.#handle === null) return Promise.resolve(false);
    return this.#waiter.wait(timeoutMs);
  }

  /** Ends the capture. Safe to call twice. */
  close(): void {
    if (this.#handle === null) return;
    pcap().pcap_close(this.#handle);
    this.#handle = null;
  }

  #open(what: string): Deno.PointerObject {
    if (this.#handle === null) throw new Error(`Cannot ${what} ${this.#iface}: capture is closed`);
    return this.#handle;
  }
}

/** Compiles `filter` and attaches it; the compiled program is freed either way. */
function setFilter(handle: Deno.PointerObject, filter: string, action: string): void {
  const lib = pcap();
  // struct bpf_program lives here while libpcap fills and reads it.
  const program = new Uint8Array(BPF_PROGRAM_BYTES);
  const compiled = lib.pcap_compile(handle, program, cString(filter), 1, PCAP_NETMASK_UNKNOWN);
  if (compiled < 0) {
    throw new PcapError(
      "pcap_compile",
      compiled,
      action,
      `filter ${JSON.stringify(filter)}: ${lastPcapError(handle)}`,
    );
  }
  try {
    const r = lib.pcap_setfilter(handle, program);
    if (r < 0) throw new PcapError("pcap_setfilter", r, action, lastPcapError(handle));
  } finally {
    lib.pcap_freecode(program);
  }
}
