/**
 * The control API's replies as they travel (JSON): one definition for the three parties that
 * speak it. proxy/api.ts builds every reply as the type here says, so the compiler checks the
 * server; agent/cli/ reads them through these types instead of casts; the live page (plain
 * browser JS) names them in JSDoc and takes the shared constants from proxy/page/constants.js,
 * which tests/ui/constants_test.ts holds equal to the ones exported here.
 *
 *     GET  /api/status        StatusReply        GET  /api/vms           VmsReply
 *     GET  /api/topology      TopologyReply      GET  /api/events        EventsReply
 *     GET  /api/adapt, PUT    AdaptReply         GET  /api/paths         PathsReply
 *     GET  /api/links         LinksReply         GET  /api/rules         RulesReply
 *     POST /api/rules         RuleAddedReply     DELETE /api/rules       RuleRemovedReply
 *     GET  /api/hosts         HostsReply         POST /api/hosts/revoke  RevokeReply
 *     POST /api/login         LoginReply         any refusal (4xx, 5xx)  ErrorReply
 *     GET  /api/underlay      UnderlayReply      GET  /api/placement, PUT  PlacementReply
 *
 * Types and constants only: a client imports the types with `import type` and loads nothing.
 *
 * @module
 */

import type { WireRule } from "../agent/control/messages.ts";
import type { LinkStats } from "../agent/link/link.ts";
import type { DropCounters, PortCounters } from "../agent/switch/switch.ts";
import type {
  AdaptLoop,
  HostReachView,
  LinkOrigin,
  PairPath,
  PairState,
  Reaction,
} from "../adapt/loop.ts";
import type { AdaptSettings, HostPair, PairDecision } from "../adapt/planner.ts";
import type { VnetEvent } from "./event_types.ts";
import type { HostRecord, RevokedKey } from "./host_book.ts";
import type { ReportRefusal } from "./report_gate.ts";
import type { TopologySnapshot } from "./vttif_service.ts";
import type { UnderlayView } from "./underlay_service.ts";
import type { PlacementView } from "./placement_service.ts";
import type { MigrationView } from "./migrator.ts";

export { LAN_HOST } from "./vm_hosts.ts";
export { EVENT_TYPES } from "./event_types.ts";

/** What every refused request answers. */
export interface ErrorReply {
  error: string;
}

/** A host's star link, as `/api/status` lists it. */
export interface HostLinkStatus extends LinkStats {
  name: string;
  /** The proxy's switch port for it (`host:NAME`). */
  port: string;
}

/**
 * A page of a long list, from `?offset=N&limit=M` (`GET /api/status` pages its hosts,
 * `GET /api/vms` its VMs): without them, the whole list, as the CLI reads it; `limit=0` on
 * `/api/status` is its summary alone. Ten thousand hosts make a reply of megabytes.
 */
export interface Page {
  /** Entries skipped from the start. */
  offset: number;
  /** Entries at most (Infinity: all). */
  limit: number;
}

/** `GET /api/status`: hosts, ports, counters, drops. */
export interface StatusReply {
  role: "proxy";
  version: string;
  memory: Deno.MemoryUsage;
  uptimeMs: number;
  /** The hosts' star links, in the order they joined (a page of them with `?offset&limit`). */
  hosts: HostLinkStatus[];
  /** Hosts connected, all of them (also when `hosts` is a page). */
  hostCount?: number;
  ports: Record<string, PortCounters>;
  macs: number;
  rules: number;
  drops: DropCounters;
  reportRefusals: Record<ReportRefusal, number>;
}

/** `GET /api/topology`: smoothed matrix, inferred topology, recent changes. */
export type TopologyReply = TopologySnapshot;

/** A fast path as `/api/adapt` lists it. */
export interface AdaptLinkView {
  pair: HostPair;
  phase: PairState["phase"];
  since: number;
  /** How it came to be (who dialed, a hole punch); null while being set up. */
  origin?: LinkOrigin | null;
}

/** A VM move and how long forwarding took to follow it. */
export type MoveView = AdaptLoop["moves"][number];

/** `GET /api/adapt` and the answer to `PUT /api/adapt`. */
export interface AdaptReply {
  settings: AdaptSettings;
  links: AdaptLinkView[];
  /**
   * Per host pair the plan's rank and traffic, with the truth: `direct` only while its link is
   * up, and `reason` saying why not (being set up, which side cannot be reached, what failed).
   */
  decisions: PairDecision[];
  reactions: Reaction[];
  moves: MoveView[];
  /** Whether the proxy carries out placement plans (`agent adapt set migrate on`). */
  migrate?: boolean;
}

/** One communicating VM pair: which path its traffic takes, since when, and why. */
export interface PathView {
  a: string;
  b: string;
  /** The VMs' hosts; null on the proxy's LAN or unknown. */
  hostA: string | null;
  hostB: string | null;
  bytesPerSec: number;
  weight: number;
  path: "star" | "same host" | "direct";
  since: number | null;
  reason: string;
  /** The fast path of the hosts' pair, when they are on two hosts (null: none). */
  link?: { pair: HostPair; phase: PairState["phase"] } | null;
  /** Direct: how the link came to be (who dialed, or a hole punch). */
  origin?: LinkOrigin | null;
  /** The hosts' pair: up, being set up, resting after failed attempts, or none. */
  state?: PairPath["state"];
  /** Direct: ms from the plan first wanting the link to both ends up. */
  upAfterMs?: number | null;
}

/** `GET /api/paths`. */
export type PathsReply = PathView[];

/** A host's star link, as `/api/links` lists it. */
export interface StarLinkView extends LinkStats {
  host: string;
  /** Whether peers can dial this host, as the proxy checked (absent: not checked). */
  reach?: HostReachView | null;
}

/** A fast path between two hosts, as `/api/links` lists it. */
export interface FastPathView {
  hosts: [string, string];
  phase: PairState["phase"];
  since: number;
  /** How it came to be (who dialed, a hole punch); null while being set up. */
  origin?: LinkOrigin | null;
}

/** `GET /api/links`: star links (hosts) and fast paths. */
export interface LinksReply {
  star: StarLinkView[];
  fastPaths: FastPathView[];
}

/** Where a VM is, as `/api/vms` lists it. */
export interface VmView {
  mac: string;
  /** Host name; {@linkcode LAN_HOST} on the proxy's LAN; else the raw port. */
  host: string;
  firstSeen: number;
  lastSeen: number;
  since: number;
}

/** `GET /api/vms`, sorted by MAC. */
export type VmsReply = VmView[];

/** `GET /api/events`: recent events, oldest first. */
export type EventsReply = VnetEvent[];

/** A rule on the proxy's own switch, with its counters. */
export interface RuleView {
  id: string;
  /** MACs as text; null: any. */
  src: string | null;
  dst: string | null;
  target: string;
  owner: string;
  reason: string;
  frames: number;
  bytes: number;
}

/** `GET /api/rules`: the proxy's rules and the ones the operator wants on each host. */
export interface RulesReply {
  proxy: RuleView[];
  hosts: Record<string, WireRule[]>;
}

/** `POST /api/rules` (201): on the proxy, or on a host (`delivered`: sent to it now). */
export type RuleAddedReply =
  | { added: RuleView; on: "proxy" }
  | { added: WireRule; on: string; delivered: boolean };

/** `DELETE /api/rules`: from the proxy, or from a host (`delivered`: sent to it now). */
export type RuleRemovedReply =
  | { removed: RuleView; on: "proxy" }
  | { removed: { src: string | null; dst: string | null }; on: string; delivered: boolean };

/** An admitted host as `/api/hosts` lists it (never its secret). */
export interface HostView extends
  Pick<
    HostRecord,
    "name" | "key" | "certSerial" | "certExpires" | "firstJoined" | "lastSeen"
  > {
  online: boolean;
}

/** `GET /api/hosts`: the host book and the revoked keys. */
export interface HostsReply {
  hosts: HostView[];
  revoked: RevokedKey[];
}

/** `POST /api/hosts/revoke`. */
export interface RevokeReply {
  revoked: { name: string; key: string | null };
}

/** `POST /api/login`: a one-time link for the live page. */
export interface LoginReply {
  url: string;
  validForMs: number;
}

/** `GET /api/underlay`: what the overlay measured of the paths between hosts. */
export type UnderlayReply = UnderlayView;

/**
 * `GET /api/placement` and the answer to `PUT /api/placement`: the settings, each host's
 * slots, the pinned VMs, a fresh plan with its reasons, and the migrations carried out.
 */
export type PlacementReply = PlacementView & { migration: MigrationView };
