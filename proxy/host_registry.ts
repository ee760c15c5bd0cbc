/**
 * The hosts the proxy has: each connected host's star link, where it accepts fast paths, and
 * the operator's rules for it (which outlive its reconnects). One place, so that a host that
 * leaves is forgotten everywhere at once and a replaced connection never removes its
 * successor.
 *
 * @module
 */

import type { WireRule } from "../agent/control/messages.ts";
import type { Link } from "../agent/link/link.ts";
import { type HostReach, Reachability, type ReachabilityDeps } from "./reachability.ts";

/** The key a connected host joined with. */
export interface HostIdentity {
  /** `SHA256:...` fingerprint. */
  key: string;
  /** The public key, base64 SPKI DER (a renewed certificate is issued for it). */
  spkiB64: string;
}

/** Connected hosts and what the proxy keeps about each. */
export class HostRegistry {
  /** Star link of each connected host, by name. */
  readonly links = new Map<string, Link>();
  /** Operator rules per host, by rule key; kept across reconnects. */
  readonly rules = new Map<string, Map<string, WireRule>>();
  readonly #listen = new Map<string, string>();
  readonly #identity = new Map<string, HostIdentity>();
  /**
   * Whether each host can be dialed, checked by the proxy itself; null until the star gives
   * a way to probe ({@linkcode checkReachabilityWith}): then only checked addresses are handed
   * to peers.
   */
  reach: Reachability | null = null;

  /** From now on, hosts' fast-path addresses are checked with `deps.probe` before use. */
  checkReachabilityWith(deps: ReachabilityDeps): Reachability {
    return this.reach = new Reachability(deps);
  }

  /**
   * What is known about reaching host `name`: null when it is not connected, undefined when
   * the proxy does not check reachability at all.
   */
  reachOf(name: string): HostReach | null | undefined {
    return this.reach ? this.reach.get(name) ?? null : undefined;
  }

  /** The connected hosts by name. */
  hosts(): ReadonlyMap<string, Link> {
    return this.links;
  }

  /** Registers `link` as host `name`'s (with its key); returns the link it replaces, if any. */
  add(name: string, link: Link, identity?: HostIdentity): Link | undefined {
    const old = this.links.get(name);
    this.links.set(name, link);
    if (identity) this.#identity.set(name, identity);
    return old;
  }

  /** The key connected host `name` joined with. */
  identityOf(name: string): HostIdentity | undefined {
    return this.#identity.get(name);
  }

  /**
   * Forgets host `name` if `link` is still its current link; returns whether it was (a
   * replaced connection closing must not remove the one that replaced it).
   */
  remove(name: string, link: Link): boolean {
    if (this.links.get(name) !== link) return false;
    this.links.delete(name);
    this.#listen.delete(name);
    this.#identity.delete(name);
    this.reach?.forget(name);
    return true;
  }

  /**
   * Where host `name` accepts fast paths, as others should dial it: with reachability checks,
   * only an address where the proxy reached it.
   */
  listenAddress(name: string): string | null {
    if (this.reach) return this.reach.get(name)?.listen ?? null;
    return this.#listen.get(name) ?? null;
  }

  /** Records where host `name` accepts fast paths. */
  setListenAddress(name: string, address: string): void {
    this.#listen.set(name, address);
  }

  /** The operator's rules for host `name`, to send it when it (re)joins. */
  rulesFor(name: string): Iterable<WireRule> {
    return this.rules.get(name)?.values() ?? [];
  }
}
