/**
 * The proxy's events, one discriminated union for every producer and reader: hosts joining,
 * leaving or revoked (host_session.ts, proxy.ts), VMs learned, moved or refused
 * (mac_events.ts), topology changes (vttif_service.ts via proxy.ts), fast-path phases and
 * reactions (adapt/events.ts) and the steps of VM migrations the proxy makes (migrator.ts). The {@linkcode EventHub} keeps and streams them; `GET
 * /api/events` sends them as they are, `agent events` and the live page read them.
 *
 *     producer -> { type, at, ...fields } -> EventHub -> /api/events, SSE `event: <type>`
 *
 * @module
 */

import type { AdaptEvent } from "../adapt/events.ts";
import type { PlacementEvent } from "./migrator.ts";
import type { TopologyEvent } from "./vttif_service.ts";

/** A host was admitted and its link is up. */
export interface HostJoined {
  type: "host";
  at: number;
  host: string;
  state: "joined";
  /** The address it connected from. */
  from: string;
}

/** A host's link closed. */
export interface HostLeft {
  type: "host";
  at: number;
  host: string;
  state: "left";
  reason: string;
}

/** The operator revoked a host: its key may never join again. */
export interface HostRevoked {
  type: "host";
  at: number;
  host: string;
  state: "revoked";
  /** The key now denied; null when the record had none bound. */
  key: string | null;
}

/** A change of a host's membership. */
export type HostEvent = HostJoined | HostLeft | HostRevoked;

/** The proxy's switch learned a new MAC behind `port`. */
export interface VmLearned {
  type: "vm";
  at: number;
  mac: string;
  port: string;
  change: "learned";
}

/** A MAC moved between ports (a VM migrated). */
export interface VmMoved {
  type: "vm";
  at: number;
  mac: string;
  from: string;
  to: string;
  change: "moved";
}

/** A claim on a MAC active elsewhere was refused (a spoof, or a move too soon). */
export interface VmRefused {
  type: "vm";
  at: number;
  mac: string;
  claimedBy: string;
  heldBy: string;
  change: "refused";
}

/** A change of where a VM is. */
export type VmEvent = VmLearned | VmMoved | VmRefused;

/** VTTIF declared a topology change; `at` is when it was declared. */
export type TopologyChanged = Omit<TopologyEvent, "type"> & { type: "topology"; at: number };

/** What the adaptation loop reports, stamped with the time the proxy saw it. */
export type StampedAdaptEvent = AdaptEvent & { at: number };

/** A step of a VM migration the proxy carries out (proxy/migrator.ts), with its reason. */
export type PlacementStep = PlacementEvent & { at: number };

/**
 * One event. `at` is ms since epoch; `type` says which fields follow.
 *
 * @example
 * ```ts
 * import type { VnetEvent } from "./event_types.ts";
 * const e: VnetEvent = { type: "host", at: 1, host: "h1", state: "left", reason: "eof" };
 * if (e.type === "host" && e.state === "left" && e.reason !== "eof") throw new Error();
 * ```
 */
export type VnetEvent =
  | HostEvent
  | VmEvent
  | TopologyChanged
  | StampedAdaptEvent
  | PlacementStep;

/** Every event type once; the compiler refuses a missing or unknown one. */
const TYPES: Record<VnetEvent["type"], true> = {
  host: true,
  link: true,
  topology: true,
  reaction: true,
  vm: true,
  placement: true,
};

/**
 * Every `type` a {@linkcode VnetEvent} can have: the SSE event names a client listens to. The
 * live page has its copy in proxy/page/constants.js, which tests/ui/constants_test.ts holds
 * equal to this.
 *
 * @example
 * ```ts
 * import { EVENT_TYPES } from "./event_types.ts";
 * if (!EVENT_TYPES.includes("topology")) throw new Error();
 * ```
 */
export const EVENT_TYPES: readonly VnetEvent["type"][] = Object.keys(TYPES) as VnetEvent["type"][];
