/**
 * libpcap bindings: capture the frames arriving on an interface and inject frames into it,
 * for hosts whose VMs cannot be given a TAP (the VM's interface is watched instead).
 *
 * libpcap is opened on first use, from the path in the `VNET_LIBPCAP` environment variable
 * when it is set, otherwise from the first of {@linkcode LIBPCAP_CANDIDATES} that loads.
 *
 * @module
 */

import { PcapError } from "./errors.ts";
import { cString, readCString } from "./libc.ts";
import { ReadyWaiter } from "./event_loop_poller.ts";

/** Library paths tried in order when `VNET_LIBPCAP` is not set. */
export const LIBPCAP_CANDIDATES: readonly string[] = [
  "libpcap.so.1",
  "libpcap.so.0.8",
  "/usr/lib/x86_64-linux-gnu/libpcap.so.0.8",
];

// Prototypes from <pcap/pcap.h> (libpcap 1.10) on x86_64 Linux. pcap_t * is an opaque
// "pointer"; structures we fill or read and C strings are "buffer"s; int -> i32,
// bpf_u_int32 -> u32, size_t -> usize.
const PCAP_SYMBOLS = {
  pcap_create: {
    parameters: [
      "buffer", // const char *source
      "buffer", // char *errbuf (PCAP_ERRBUF_SIZE bytes)
    ],
    result: "pointer", // pcap_t *, NULL on error
  },
  pcap_set_snaplen: {
    parameters: ["pointer", "i32"], // pcap_t *p, int snaplen
    result: "i32", // int
  },
  pcap_set_promisc: {
    parameters: ["pointer", "i32"], // pcap_t *p, int promisc
    result: "i32", // int
  },
  pcap_set_immediate_mode: {
    parameters: ["pointer", "i32"], // pcap_t *p, int immediate_mode
    result: "i32", // int
  },
  pcap_set_buffer_size: {
    parameters: ["pointer", "i32"], // pcap_t *p, int buffer_size
    result: "i32", // int
  },
  pcap_activate: {
    parameters: ["pointer"], // pcap_t *p
    result: "i32", // int: 0, a warning > 0 or an error < 0
  },
  pcap_geterr: {
    parameters: ["pointer"], // pcap_t *p
    result: "pointer", // char * (owned by p)
  },
  pcap_statustostr: {
    parameters: ["i32"], // int error
    result: "pointer", // const char * (static)
  },
  pcap_setnonblock: {
    parameters: [
      "pointer", // pcap_t *p
      "i32", // int nonblock
      "buffer", // char *errbuf
    ],
    result: "i32", // int
  },
  pcap_setdirection: {
    parameters: ["pointer", "i32"], // pcap_t *p, pcap_direction_t d (an enum: int)
    result: "i32", // int
  },
  pcap_compile: {
    parameters: [
      "pointer", // pcap_t *p
      "buffer", // struct bpf_program *fp
      "buffer", // const char *str
      "i32", // int optimize
      "u32", // bpf_u_int32 netmask
    ],
    result: "i32", // int
  },
  pcap_setfilter: {
    parameters: ["pointer", "buffer"], // pcap_t *p, struct bpf_program *fp
    result: "i32", // int
  },
  pcap_freecode: {
    parameters: ["buffer"], // struct bpf_program *fp
    result: "void",
  },
  pcap_get_selectable_fd: {
    parameters: ["pointer"], // pcap_t *p
    result: "i32", // int, -1 when there is none
  },
  pcap_next_ex: {
    parameters: [
      "pointer", // pcap_t *p
      "buffer", // struct pcap_pkthdr **pkt_header
      "buffer", // const u_char **pkt_data
    ],
    result: "i32", // int: 1 packet, 0 none ready, PCAP_ERROR, PCAP_ERROR_BREAK
  },
  pcap_inject: {
    parameters: [
      "pointer", // pcap_t *p
      "buffer", // const void *buf
      "usize", // size_t size
    ],
    result: "i32", // int bytes written, PCAP_ERROR on error
  },
  pcap_stats: {
    parameters: ["pointer", "buffer"], // pcap_t *p, struct pcap_stat *ps
    result: "i32", // int
  },
  pcap_close: {
    parameters: ["pointer"], // pcap_t *p
    result: "void",
  },
} as const satisfies Deno.ForeignLibraryInterface;

type PcapSymbols = Deno.DynamicLibrary<typeof PCAP_SYMBOLS>["symbols"];

let library: Deno.DynamicLibrary<typeof PCAP_SYMBOLS> | undefined;

/**
 * Loads libpcap (as the first capture would) and says nothing when it can; throws the same
 * error, listing every path tried, when it cannot. For `agent doctor`.
 */
export function checkLibpcap(): void {
  pcap();
}

/** The libpcap symbols, loading the library on the first call. */
function pcap(): PcapSymbols {
  if (library !== undefined) return library.symbols;
  const override = Deno.env.get("VNET_LIBPCAP");
  const paths = override ? [override] : LIBPCAP_CANDIDATES;
  const failures: string[] = [];
  for (const path of paths) {
    try {
      library = Deno.dlopen(path, PCAP_SYMBOLS);
      return library.symbols;
    } catch (e) {
      failures.push(`${path} (${(e as Error).message})`);
    }
  }
  throw new Error(
    `Cannot load libpcap: tried ${failures.join("; ")}. ` +
      "Install it with `apt-get install libpcap0.8`, or set VNET_LIBPCAP to its path.",
  );
}

const PCAP_ERRBUF_SIZE = 256;
const PCAP_ERROR = -1;
const PCAP_ERROR_BREAK = -2;
const PCAP_ERROR_PERM_DENIED = -8;
const PCAP_D_IN = 1;
const PCAP_NETMASK_UNKNOWN = 0xffffffff;
/** struct bpf_program { u_int bf_len; struct bpf_insn *bf_insns; } on x86_64. */
const BPF_PROGRAM_BYTES = 16;
/** struct pcap_pkthdr { struct timeval ts (16 bytes); u32 caplen; u32 len; } on x86_64. */
const PKTHDR_BYTES = 24;
const PKTHDR_CAPLEN = 16;
/** struct pcap_stat { u_int ps_recv; u_int ps_drop; u_int ps_ifdrop; } on Linux. */
const PCAP_STAT_BYTES = 12;

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

/** libpcap's last error text for `handle`. */
function lastPcapError(handle: Deno.PointerObject): string {
  const text = pcap().pcap_geterr(handle);
  return text === null ? "" : Deno.UnsafePointerView.getCString(text);
}

/** A status code's description, followed by the handle's own error text when it has one. */
function statusText(handle: Deno.PointerObject, status: number): string {
  const described = pcap().pcap_statustostr(status);
  const general = described === null
    ? `status ${status}`
    : Deno.UnsafePointerView.getCString(described);
  const specific = lastPcapError(handle);
  if (specific === "" || specific === general) return general;
  return specific.includes(general) ? specific : `${general}: ${specific}`;
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
