/**
 * What the switch remembers about VMs in the middle of a migration, on either side:
 *
 * - proxy: frames held while a MAC's move is under review. A migrating VM's first frames
 *   (often ARP requests) arrive from its new host before the old host has confirmed it left;
 *   they are kept and replayed if the move is authorised, so the VM does not lose its 1 s ARP
 *   retransmission ({@linkcode HeldClaims}).
 * - host: VMs that just left. A peer whose rules are still being replaced may send frames for
 *   one here; they go on to the proxy, which knows where the VM is now ({@linkcode MovedAway}).
 *
 * Both are bounded, so a flood of claims or departures cannot grow memory.
 *
 * @module
 */

import type { Mac } from "./ethernet.ts";

/** Claims whose frames are held at once, and frames held per claim (bounded memory). */
const MAX_HELD_CLAIMS = 64;
const MAX_HELD_FRAMES = 4;

/** VMs that left a host remembered at once (cleared when full). */
const MAX_MOVED_AWAY = 64;

/** How long a host passes frames for a VM that left it on to the proxy. */
const MOVED_AWAY_MS = 10_000;

/**
 * Copies of frames per MAC whose claim by a port is under review.
 *
 * @example
 * ```ts
 * import { HeldClaims } from "./migration.ts";
 * const held = new HeldClaims();
 * held.hold(1, "host:b", new Uint8Array(70));
 * if (held.take(1)?.packets.length !== 1 || held.take(1) !== undefined) throw new Error();
 * ```
 */
export class HeldClaims {
  readonly #held = new Map<Mac, { port: string; packets: Uint8Array[] }>();

  /** Keeps a copy of a frame of `port`'s claim on `mac`; a newer claimant replaces the old. */
  hold(mac: Mac, port: string, packet: Uint8Array): void {
    let h = this.#held.get(mac);
    if (!h || h.port !== port) {
      if (!h && this.#held.size >= MAX_HELD_CLAIMS) return;
      this.#held.set(mac, h = { port, packets: [] });
    }
    if (h.packets.length < MAX_HELD_FRAMES) h.packets.push(packet.slice());
  }

  /** Removes and returns what is held for `mac`. */
  take(mac: Mac): { port: string; packets: Uint8Array[] } | undefined {
    const h = this.#held.get(mac);
    this.#held.delete(mac);
    return h;
  }

  /** Drops what is held for `mac`. */
  release(mac: Mac): void {
    this.#held.delete(mac);
  }
}

/**
 * A host's VMs that left it, each until when frames for it are passed to the proxy.
 *
 * @example
 * ```ts
 * import { MovedAway } from "./migration.ts";
 * const away = new MovedAway();
 * away.mark(7, 0);
 * if (!away.passOn(7, 1) || away.passOn(7, 60_000)) throw new Error();
 * away.mark(8, 0);
 * away.returned(8); // it came back
 * if (away.passOn(8, 1)) throw new Error("a VM that is back is delivered here");
 * ```
 */
export class MovedAway {
  readonly #until = new Map<Mac, number>();

  /** VM `mac` left this host at `now`. */
  mark(mac: Mac, now: number): void {
    if (this.#until.size >= MAX_MOVED_AWAY) this.#until.clear();
    this.#until.set(mac, now + MOVED_AWAY_MS);
  }

  /**
   * VM `mac` is on this host again (it came back before its departure expired, as a VM
   * migrated away and back does): frames for it are delivered here from now on.
   */
  returned(mac: Mac): void {
    if (this.#until.size > 0) this.#until.delete(mac);
  }

  /** Whether a frame for `dst` should go on to the proxy; forgets departures that expired. */
  passOn(dst: Mac, now: number): boolean {
    if (this.#until.size === 0) return false;
    const until = this.#until.get(dst);
    if (until === undefined) return false;
    if (now < until) return true;
    this.#until.delete(dst);
    return false;
  }
}
