/**
 * The switch's hooks: what it tells the outside (frames entering the overlay, MACs learned,
 * moved or refused) and what it asks the outside (may a MAC move, may a peer send a source).
 * The switch stays pure (no clock, no socket); these interfaces are where the proxy's MAC
 * authority, the host's fast-path trust and VTTIF's counters plug in.
 *
 * @module
 */

import type { Mac } from "./ethernet.ts";

/** Notified of every frame that enters the overlay at this switch's device (VTTIF counts). */
export interface FrameObserver {
  observe(src: Mac, dst: Mac, bytes: number): void;
}

/**
 * Decides whether a MAC held behind one port may move to another, from what the switch cannot
 * know alone (whether the old host still has the VM). `refuse` counts the frame as spoofed,
 * `pending` as a claim under review; neither moves the MAC. The proxy's is
 * proxy/mac_authority.ts; without one, the quiet timer decides.
 */
export interface MovePolicy {
  decide(mac: Mac, heldBy: string, claimedBy: string, now: number): "move" | "refuse" | "pending";
}

/**
 * Host: the sources each fast-path peer may send, as the proxy (the authority for MAC -> host)
 * says; a frame from a peer port with any other source is dropped as spoofed.
 */
export interface PeerSourcePolicy {
  allows(port: string, src: Mac): boolean;
}

/** Notified when the switch learns, moves or refuses a MAC. */
export interface MacListener {
  onMacLearned?(mac: Mac, port: string, now: number): void;
  onMacMoved?(mac: Mac, from: string, to: string, now: number): void;
  onMacRefused?(mac: Mac, claimedBy: string, heldBy: string, now: number): void;
}
