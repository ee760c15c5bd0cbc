/**
 * What the switch sends to: a port, its kind and its counters. Split from switch.ts so links,
 * devices and the API can name a port without loading the switch's decision logic; the names
 * themselves are typed in port_name.ts.
 *
 * @module
 */

/** What a port is, which decides the switch's defaults. */
export type PortKind =
  /** The local attachment: TAP or captured interface (VMs, or the user's LAN at the proxy). */
  | "device"
  /** A host's link to the proxy. */
  | "uplink"
  /** The proxy's link to one host. */
  | "host"
  /** A fast-path link between two hosts. */
  | "peer";

/** Where the switch can send a packet. */
export interface Port {
  /** Unique name: `device`, `proxy`, `host:NAME`, `peer:NAME`. Rules target it by this name. */
  readonly name: string;
  readonly kind: PortKind;
  /**
   * Takes the packet (header + frame); must copy it or write it before returning, since the
   * view is reused. False when it had to drop it (full queue, device error); never throws.
   */
  send(packet: Uint8Array): boolean;
}

/** Counters of one port as seen by the switch; they only grow. */
export interface PortCounters {
  rxFrames: number;
  rxBytes: number;
  txFrames: number;
  txBytes: number;
  txDrops: number;
}

/**
 * Fresh, zeroed port counters.
 *
 * @example
 * ```ts
 * import { newPortCounters } from "./port.ts";
 * if (newPortCounters().txDrops !== 0) throw new Error("not zero");
 * ```
 */
export function newPortCounters(): PortCounters {
  return { rxFrames: 0, rxBytes: 0, txFrames: 0, txBytes: 0, txDrops: 0 };
}
