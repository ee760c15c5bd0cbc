/**
 * The names of the switch's ports, typed: who a frame came from and where a rule sends it.
 * Built and taken apart only here, so no caller cuts strings with `.slice(5)`.
 *
 *     device       the VMs' network (a host's TAP or capture; the proxy's LAN)
 *     proxy        a host's uplink to the proxy (the star)
 *     host:NAME    the proxy's link to host NAME
 *     peer:NAME    a host's fast-path link to host NAME
 *
 * @module
 */

/** The attached network of VMs (host) or the LAN (proxy). */
export const DEVICE_PORT = "device";

/** A host's uplink to the proxy. */
export const UPLINK_PORT = "proxy";

/** The proxy's port for host NAME. */
export type HostPort = `host:${string}`;

/** A host's fast-path port to host NAME. */
export type PeerPort = `peer:${string}`;

/** Any port name. */
export type PortName = typeof DEVICE_PORT | typeof UPLINK_PORT | HostPort | PeerPort;

/** The proxy's port for host `name`. */
export function hostPort(name: string): HostPort {
  return `host:${name}`;
}

/** A host's port for its fast path to `peer`. */
export function peerPort(peer: string): PeerPort {
  return `peer:${peer}`;
}

/**
 * The host behind a proxy port, or null for any other port.
 *
 * @example
 * ```ts
 * import { hostOfPort } from "./port_name.ts";
 * if (hostOfPort("host:h1") !== "h1" || hostOfPort("device") !== null) throw new Error();
 * ```
 */
export function hostOfPort(port: string): string | null {
  return port.startsWith("host:") ? port.slice("host:".length) : null;
}

/** The peer behind a fast-path port, or null for any other port. */
export function peerOfPort(port: string): string | null {
  return port.startsWith("peer:") ? port.slice("peer:".length) : null;
}
