/**
 * What the adaptation loop needs from the proxy: its hosts and their control channels, where
 * and whether each can be dialed, their keys, where the VMs are and the inferred topology.
 * proxy/core.ts builds it from the proxy's parts; tests hand in a fake.
 *
 * @module
 */

import type { ProxyMessage } from "../agent/control/messages.ts";
import type { TopologyGraph } from "../inference/topology.ts";
import type { HostReachView } from "./link_setup.ts";

/** What the loop needs from the proxy. */
export interface Overlay {
  /** Connected hosts by name, with a way to send them control messages. */
  hosts(): ReadonlyMap<string, { sendControl(msg: ProxyMessage): boolean }>;
  /** Where `host` accepts fast-path links (`ip:port`), or null. */
  listenAddress(host: string): string | null;
  /**
   * The key `host` joined with (`SHA256:...`), or null: its peers verify its certificate by
   * it, so a certificate of a revoked key for the same name is refused.
   */
  keyOf(host: string): string | null;
  /** VM MAC -> host name, from the proxy's MAC table. */
  vmHosts(): ReadonlyMap<string, string>;
  /** The current inferred topology. */
  topology(): TopologyGraph;
  /**
   * Whether `host` can be dialed, as the proxy checked it; null: not known (not connected).
   * Absent, or undefined for a host: no checks, and a host with a listen address is dialed.
   */
  reach?(host: string): HostReachView | null | undefined;
  /** Check `host` again: a peer could not dial it at the address the proxy had checked. */
  recheck?(host: string): void;
}
