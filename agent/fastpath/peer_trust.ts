/**
 * What a host trusts of its fast-path peers, all of it from the proxy (the authority for
 * identities and MAC ownership): the key each peer joined with, the keys revoked, and the VM
 * MACs each peer may send as sources.
 *
 *     peer-expect / peer-connect {key} ──> keyOf(peer)   (the dialer verifies the acceptor's
 *                                                         certificate by this key's TLS name)
 *     keys-revoked {keys}               ──> denied(key)   (no fast path with such a peer)
 *     peer-macs {set | add | remove}    ──> allows(port, src)  (Switch: else dropped, spoofed)
 *
 * @module
 */

import type { PeerMacs } from "../control/messages.ts";
import { type Mac, parseMac } from "../switch/ethernet.ts";
import { peerPort } from "../switch/port_name.ts";
import type { PeerSourcePolicy } from "../switch/switch.ts";

/**
 * The proxy's word on fast-path peers.
 *
 * @example
 * ```ts
 * import { PeerTrust } from "./peer_trust.ts";
 * const t = new PeerTrust();
 * t.onPeerMacs({ type: "peer-macs", peer: "h2", change: "set", macs: ["02:00:00:00:00:02"] });
 * if (!t.allows("peer:h2", 0x020000000002) || t.allows("peer:h2", 0x020000000003)) {
 *   throw new Error("only h2's own VM");
 * }
 * ```
 */
export class PeerTrust implements PeerSourcePolicy {
  /** Peer port -> the VM MACs the proxy places behind that peer. */
  readonly #sources = new Map<string, Set<Mac>>();
  /** Peer name -> the key the proxy says it has. */
  readonly #keys = new Map<string, string>();
  #denied: ReadonlySet<string> = new Set();

  /** Whether the peer behind `port` may send frames from `src`. */
  allows(port: string, src: Mac): boolean {
    return this.#sources.get(port)?.has(src) ?? false;
  }

  /** Applies a peer-macs message. */
  onPeerMacs(msg: PeerMacs): void {
    const port = peerPort(msg.peer);
    let set = this.#sources.get(port);
    if (!set || msg.change === "set") this.#sources.set(port, set = new Set());
    for (const text of msg.macs) {
      if (msg.change === "remove") set.delete(parseMac(text));
      else set.add(parseMac(text));
    }
  }

  /** Records `peer`'s key (from peer-expect/peer-connect); false when that key is revoked. */
  expectKey(peer: string, key: string): boolean {
    if (this.#denied.has(key)) return false;
    this.#keys.set(peer, key);
    return true;
  }

  /** The key `peer` was last said to have. */
  keyOf(peer: string): string | undefined {
    return this.#keys.get(peer);
  }

  /** Takes the proxy's deny list; returns the peers whose key is now revoked. */
  onRevoked(keys: readonly string[]): string[] {
    this.#denied = new Set(keys);
    return [...this.#keys].filter(([, k]) => this.#denied.has(k)).map(([peer]) => peer);
  }

  /** Whether `key` is on the deny list. */
  denied(key: string): boolean {
    return this.#denied.has(key);
  }
}
