/**
 * Whether a VM is still on this host's network, as the kernel's bridge sees it (read through
 * ffi/kernel_file.ts: Deno's file API refuses /sys to the agent's permissions): its MAC in the
 * bridge's forwarding database behind a port other than the agent's own TAP. A migrated VM's
 * port leaves the bridge (QEMU quits and its TAP goes, a veth moves away) and the kernel drops
 * its entries at once; a VM that is merely quiet keeps its entry (aged after minutes). So the
 * answer cannot be faked from another host, unlike "it has been quiet for a while".
 *
 *     /sys/class/net/BRIDGE/brforward     struct __fdb_entry[], 16 bytes each:
 *       mac[6] port_no u8 is_local u8 ageing_timer u32 port_hi u8 pad u8 unused u16
 *     /sys/class/net/TAP/brport/port_no   the TAP's port number, "0x3"
 *
 * @module
 */

import { formatMac, type Mac } from "../switch/ethernet.ts";
import { readKernelFile, readKernelText } from "../../ffi/kernel_file.ts";

/** One entry of a bridge's forwarding database. */
export interface FdbEntry {
  mac: Mac;
  port: number;
  /** The bridge's own address on that port, not a learned one. */
  local: boolean;
}

const ENTRY_BYTES = 16;

/**
 * Parses the bytes of `/sys/class/net/BRIDGE/brforward`.
 *
 * @example
 * ```ts
 * import { parseBrforward } from "./bridge_fdb.ts";
 * const b = new Uint8Array(16);
 * b.set([0x02, 0, 0, 0, 0, 0x01, 3, 0], 0);
 * const [e] = parseBrforward(b);
 * if (e.mac !== 0x020000000001 || e.port !== 3 || e.local) throw new Error();
 * ```
 */
export function parseBrforward(bytes: Uint8Array): FdbEntry[] {
  const out: FdbEntry[] = [];
  for (let at = 0; at + ENTRY_BYTES <= bytes.length; at += ENTRY_BYTES) {
    let mac = 0;
    for (let i = 0; i < 6; i++) mac = mac * 256 + bytes[at + i];
    out.push({ mac, port: (bytes[at + 12] << 8) | bytes[at + 6], local: bytes[at + 7] !== 0 });
  }
  return out;
}

/** How long one reading of the forwarding database answers further questions. */
const FDB_FRESH_MS = 50;

/**
 * A host's view of its VMs' bridge. Another host claiming many of this host's VMs makes the
 * proxy ask about each (at most every 100 ms per VM): one reading of the database, kept for
 * 50 ms, answers them all, so the claims cannot make this host read it at their rate.
 */
export class BridgeView {
  readonly #bridge: string;
  readonly #ownTap: string;
  #readAt = -Infinity;
  #present = new Set<Mac>();

  /** @param ownTap the agent's TAP on `bridge` (remote VMs are learned behind it) */
  constructor(bridge: string, ownTap: string) {
    this.#bridge = bridge;
    this.#ownTap = ownTap;
  }

  /**
   * True when `mac` is in the bridge's forwarding database behind a port other than the
   * agent's TAP, as of at most 50 ms before `now`. Throws when the bridge cannot be read.
   */
  present(mac: Mac, now: number): boolean {
    if (now - this.#readAt >= FDB_FRESH_MS) {
      this.#present = this.#read(mac);
      this.#readAt = now;
    }
    return this.#present.has(mac);
  }

  #read(asked: Mac): Set<Mac> {
    let tapPort = -1;
    try {
      tapPort = parseInt(readKernelText(`/sys/class/net/${this.#ownTap}/brport/port_no`), 16);
    } catch { /* the TAP is not on this bridge: every entry counts */ }
    let bytes: Uint8Array;
    try {
      bytes = readKernelFile(`/sys/class/net/${this.#bridge}/brforward`);
    } catch (e) {
      throw new Error(
        `Cannot read bridge ${this.#bridge}'s forwarding database to check ` +
          `${formatMac(asked)}: ${(e as Error).message}`,
      );
    }
    return new Set(
      parseBrforward(bytes).filter((e) => !e.local && e.port !== tapPort).map((e) => e.mac),
    );
  }
}
