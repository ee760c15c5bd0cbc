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

/**
 * True when `mac` is in bridge `bridge`'s forwarding database behind a port other than
 * `ownTap` (where the overlay delivers remote VMs' frames, so the bridge learns them there
 * too). Throws when the bridge cannot be read, with the path.
 */
export function presentOnBridge(mac: Mac, bridge: string, ownTap: string): boolean {
  let tapPort = -1;
  try {
    tapPort = parseInt(readKernelText(`/sys/class/net/${ownTap}/brport/port_no`), 16);
  } catch { /* the TAP is not on this bridge: every entry counts */ }
  let bytes: Uint8Array;
  try {
    bytes = readKernelFile(`/sys/class/net/${bridge}/brforward`);
  } catch (e) {
    throw new Error(
      `Cannot read bridge ${bridge}'s forwarding database to check ${formatMac(mac)}: ` +
        (e as Error).message,
    );
  }
  return parseBrforward(bytes).some((e) => e.mac === mac && !e.local && e.port !== tapPort);
}
