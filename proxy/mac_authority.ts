/**
 * Who may take over a VM's MAC: the proxy decides, from something an attacker elsewhere cannot
 * fake. A MAC held behind a live host moves to another host only after the holder says the VM
 * is no longer on its network (its bridge has no entry for it on a VM port: a migrated VM's
 * port left the bridge), or when the holder's link is gone (the switch moves it then without
 * asking). A MAC on the proxy's own LAN never moves to a host.
 *
 *     frame from B with src M (held by A) ──> decide: pending ──mac-check──> A
 *     A ──mac-status present=false──> relocate M to B now (forwarding follows at once)
 *     A ──mac-status present=true───> refused: spoofing, counted and logged
 *
 * The claimant's frames are dropped while A is asked (counted as claimPending), so a genuine
 * migration costs one round trip to the old host; a spoofer only ever gets "refused".
 *
 * @module
 */

import type { Mac } from "../agent/switch/ethernet.ts";
import { formatMac } from "../agent/switch/ethernet.ts";
import { DEVICE_PORT, hostOfPort } from "../agent/switch/port_name.ts";
import type { MovePolicy } from "../agent/switch/switch.ts";

/** Asking again after this long when no answer came (a lost message, a slow host). */
export const RECHECK_MS = 100;

/** A "gone" answer authorises a move for this long (when the claimant had left meanwhile). */
const GONE_VALID_MS = 2000;

/** Claims under review and answers kept at most. */
const MAX_TRACKED = 10_000;

/** What the authority acts through: the proxy's links and switch. */
export interface MacAuthorityDeps {
  /** Sends host `host` a mac-check for `mac`; false when it could not be sent. */
  ask(host: string, mac: string): boolean;
  /** Moves `mac` behind port `to` now (Switch.relocate); false when `to` is gone. */
  relocate(mac: Mac, to: string, now: number): boolean;
  /** A claim was refused: count it and tell the operator. */
  refused(mac: Mac, claimedBy: string, heldBy: string, now: number): void;
}

interface Claim {
  claimant: string;
  heldBy: string;
  askedAt: number;
}

/** The proxy's {@linkcode MovePolicy}. */
export class MacAuthority implements MovePolicy {
  readonly #deps: MacAuthorityDeps;
  readonly #claims = new Map<Mac, Claim>();
  readonly #gone = new Map<Mac, { heldBy: string; at: number }>();

  constructor(deps: MacAuthorityDeps) {
    this.#deps = deps;
  }

  /**
   * A frame from `claimedBy` carries `mac`, held behind the live port `heldBy`.
   *
   * @example
   * ```ts
   * import { MacAuthority } from "./mac_authority.ts";
   * const asked: string[] = [];
   * const a = new MacAuthority({
   *   ask: (host, mac) => (asked.push(`${host} ${mac}`), true),
   *   relocate: () => true,
   *   refused: () => {},
   * });
   * if (a.decide(1, "host:a", "host:b", 0) !== "pending") throw new Error();
   * if (asked.join() !== "a 00:00:00:00:00:01") throw new Error(asked.join());
   * if (a.decide(1, "device", "host:b", 0) !== "refuse") throw new Error("a LAN MAC moved");
   * ```
   */
  decide(mac: Mac, heldBy: string, claimedBy: string, now: number): "move" | "refuse" | "pending" {
    const holder = hostOfPort(heldBy);
    if (heldBy === DEVICE_PORT || holder === null) return "refuse";
    const gone = this.#gone.get(mac);
    if (gone) {
      this.#gone.delete(mac);
      if (gone.heldBy === heldBy && now - gone.at < GONE_VALID_MS) return "move";
    }
    const claim = this.#claims.get(mac);
    if (claim && claim.heldBy === heldBy && now - claim.askedAt < RECHECK_MS) {
      claim.claimant = claimedBy;
      return "pending";
    }
    if (this.#claims.size >= MAX_TRACKED) this.#claims.clear();
    this.#claims.set(mac, { claimant: claimedBy, heldBy, askedAt: now });
    this.#deps.ask(holder, formatMac(mac));
    return "pending";
  }

  /** Host `host` answered whether `mac` is still on its network. */
  onStatus(host: string, mac: Mac, present: boolean, now: number): void {
    const claim = this.#claims.get(mac);
    // Only an answer from the holder, to a question we asked, counts.
    if (!claim || hostOfPort(claim.heldBy) !== host) return;
    this.#claims.delete(mac);
    if (present) {
      this.#deps.refused(mac, claim.claimant, claim.heldBy, now);
      return;
    }
    // The VM left: it lives where it was claimed from. Move it now, so that traffic to it
    // turns at once instead of waiting for its next frame.
    if (!this.#deps.relocate(mac, claim.claimant, now)) {
      if (this.#gone.size >= MAX_TRACKED) this.#gone.clear();
      this.#gone.set(mac, { heldBy: claim.heldBy, at: now });
    }
  }

  /** Host `host` left: its pending questions will never be answered (the switch moves freely). */
  forgetHost(host: string): void {
    for (const [mac, c] of this.#claims) {
      if (hostOfPort(c.heldBy) === host) this.#claims.delete(mac);
    }
  }
}
