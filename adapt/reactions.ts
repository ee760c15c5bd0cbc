/**
 * The VNET reaction times the loop measures: a topology change declared -> the new links up
 * and their rules active on every host; a VM's move -> forwarding updated everywhere. Each
 * waits, pending, until the loop reports the overlay converged.
 *
 * @module
 */

import { logger } from "../agent/log.ts";
import type { AdaptEvent } from "./events.ts";

/** One measured VNET reaction: topology change declared -> rules active on every host. */
export interface Reaction {
  detectedAt: number;
  activeAt: number;
  ms: number;
  links: number;
}

/** A VM move and how long forwarding took to follow it. */
export interface MoveRecord {
  mac: string;
  movedAt: number;
  settledAt: number;
  ms: number;
}

/** Reactions kept. */
export const MAX_REACTIONS = 100;

/** Pending and measured reactions. */
export class ReactionLog {
  readonly reactions: Reaction[] = [];
  readonly moves: MoveRecord[] = [];
  #pendingMoves: { mac: string; movedAt: number }[] = [];
  #pendingReaction: number | null = null;
  readonly #log = logger("adapt");

  /** A topology change was declared at `detectedAt`. */
  changeDeclared(detectedAt: number): void {
    this.#pendingReaction = detectedAt;
  }

  /** VM `mac` was first seen behind its new host at `now`. */
  vmMoved(mac: string, now: number): void {
    this.#pendingMoves.push({ mac, movedAt: now });
  }

  /**
   * The loop acted at `now`; if the overlay has `converged` (every planned link up, every
   * host's rules applied), what was pending is measured and told to `emit`.
   */
  settle(converged: () => boolean, links: number, now: number, emit: (e: AdaptEvent) => void) {
    if (this.#pendingMoves.length && converged()) {
      for (const m of this.#pendingMoves) {
        const ms = now - m.movedAt;
        this.moves.push({ ...m, settledAt: now, ms });
        if (this.moves.length > MAX_REACTIONS) this.moves.shift();
        this.#log.info("VM {mac} moved; forwarding updated everywhere in {ms} ms", {
          mac: m.mac,
          ms,
        });
        emit({ type: "reaction", kind: "migration", mac: m.mac, ms });
      }
      this.#pendingMoves = [];
    }
    if (this.#pendingReaction !== null && converged()) {
      const detectedAt = this.#pendingReaction;
      const ms = now - detectedAt;
      this.reactions.push({ detectedAt, activeAt: now, ms, links });
      if (this.reactions.length > MAX_REACTIONS) this.reactions.shift();
      emit({ type: "reaction", ms, links, detectedAt });
      this.#log.info("Overlay adapted in {ms} ms: {links} fast paths, rules active on every host", {
        ms,
        links,
      });
      this.#pendingReaction = null;
    }
  }
}
