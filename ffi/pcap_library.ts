/**
 * The libpcap library: its symbols object (each parameter annotated with its C type from
 * <pcap/pcap.h>), the lazy loader that lists every path it tried, the constants of the
 * structures the capture fills, and libpcap's own error texts. Kept apart from pcap.ts, which
 * holds the capture handle that uses them, as denodrivers/sqlite3 keeps its one symbols object.
 *
 * libpcap is opened on first use, from the path in the `VNET_LIBPCAP` environment variable
 * when it is set, otherwise from the first of {@linkcode LIBPCAP_CANDIDATES} that loads.
 *
 * @module
 */

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

/** The libpcap symbols object. */
export type PcapSymbols = Deno.DynamicLibrary<typeof PCAP_SYMBOLS>["symbols"];

let library: Deno.DynamicLibrary<typeof PCAP_SYMBOLS> | undefined;

/**
 * Loads libpcap (as the first capture would) and says nothing when it can; throws the same
 * error, listing every path tried, when it cannot. For `agent doctor`.
 */
export function checkLibpcap(): void {
  pcap();
}

/** The libpcap symbols, loading the library on the first call. */
export function pcap(): PcapSymbols {
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

/** Bytes of the error buffer libpcap fills (PCAP_ERRBUF_SIZE). */
export const PCAP_ERRBUF_SIZE = 256;
/** Generic failure status (PCAP_ERROR). */
export const PCAP_ERROR = -1;
/** pcap_next_ex: the capture ended (PCAP_ERROR_BREAK). */
export const PCAP_ERROR_BREAK = -2;
/** pcap_activate: no permission to capture (PCAP_ERROR_PERM_DENIED). */
export const PCAP_ERROR_PERM_DENIED = -8;
/** pcap_setdirection: inbound frames only (PCAP_D_IN). */
export const PCAP_D_IN = 1;
/** pcap_compile: the netmask is unknown (PCAP_NETMASK_UNKNOWN). */
export const PCAP_NETMASK_UNKNOWN = 0xffffffff;
/** struct bpf_program { u_int bf_len; struct bpf_insn *bf_insns; } on x86_64. */
export const BPF_PROGRAM_BYTES = 16;
/** struct pcap_pkthdr { struct timeval ts (16 bytes); u32 caplen; u32 len; } on x86_64. */
export const PKTHDR_BYTES = 24;
/** Offset of caplen in struct pcap_pkthdr. */
export const PKTHDR_CAPLEN = 16;
/** struct pcap_stat { u_int ps_recv; u_int ps_drop; u_int ps_ifdrop; } on Linux. */
export const PCAP_STAT_BYTES = 12;

/** libpcap's last error text for `handle`. */
export function lastPcapError(handle: Deno.PointerObject): string {
  const text = pcap().pcap_geterr(handle);
  return text === null ? "" : Deno.UnsafePointerView.getCString(text);
}

/** A status code's description, followed by the handle's own error text when it has one. */
export function statusText(handle: Deno.PointerObject, status: number): string {
  const described = pcap().pcap_statustostr(status);
  const general = described === null
    ? `status ${status}`
    : Deno.UnsafePointerView.getCString(described);
  const specific = lastPcapError(handle);
  if (specific === "" || specific === general) return general;
  return specific.includes(general) ? specific : `${general}: ${specific}`;
}
