/**
 * What the adaptation loop tells the proxy about (`AdaptLoop.onEvent`): fast paths changing
 * phase and measured reactions. The proxy stamps each with the time and publishes it on its
 * event stream (proxy/event_types.ts), so these shapes are part of `GET /api/events` and the
 * live page's timeline: fields are only ever added, never renamed.
 *
 * @module
 */

import type { HostPair } from "./planner.ts";

/** A fast path came up on both ends: its traffic may now use it. */
export interface LinkUp {
  type: "link";
  pair: HostPair;
  phase: "up";
  /** How it came to be: "h2 dialed h1", a hole punch (absent from older proxies). */
  via?: string;
}

/** A fast path is being set up, drained, went down, or was closed; `reason` says why. */
export interface LinkChanged {
  type: "link";
  pair: HostPair;
  phase: "connecting" | "draining" | "down" | "closed";
  reason: string;
}

/** A fast path's phase change. */
export type LinkEvent = LinkUp | LinkChanged;

/** The overlay adapted to a topology change: rules active on every host, `ms` after it. */
export interface AdaptedReaction {
  type: "reaction";
  /** Absent: tells this reaction from a {@linkcode MigrationReaction}. */
  kind?: undefined;
  ms: number;
  /** Fast paths in the plan that was carried out. */
  links: number;
  /** When the change was declared (ms since epoch). */
  detectedAt: number;
}

/** Forwarding caught up everywhere with a VM that moved, `ms` after the move. */
export interface MigrationReaction {
  type: "reaction";
  kind: "migration";
  mac: string;
  ms: number;
}

/** A measured reaction. */
export type ReactionEvent = AdaptedReaction | MigrationReaction;

/**
 * Everything the loop reports, discriminated by `type` (and a reaction by `kind`).
 *
 * @example
 * ```ts
 * import type { AdaptEvent } from "./events.ts";
 * const say = (e: AdaptEvent) =>
 *   e.type === "link" ? `${e.pair} ${e.phase}` : e.kind === "migration" ? e.mac : `${e.links}`;
 * if (say({ type: "link", pair: "a|b", phase: "up" }) !== "a|b up") throw new Error();
 * ```
 */
export type AdaptEvent = LinkEvent | ReactionEvent;
