/**
 * What the control API reads and steers: the proxy's parts it answers from, handed to the
 * request handler (api.ts), the reply views (api_views.ts) and the metrics (metrics.ts).
 *
 * @module
 */

import type { DiscoveryCount } from "./host_session.ts";
import { type Clock, systemClock } from "../agent/clock.ts";
import type { WireRule } from "../agent/control/messages.ts";
import type { Link } from "../agent/link/link.ts";
import type { Switch } from "../agent/switch/switch.ts";
import type { AdaptLoop } from "../adapt/loop.ts";
import type { EventHub } from "./events.ts";
import type { HostBook, HostRecord } from "./host_book.ts";
import type { ReportGate } from "./report_gate.ts";
import type { VttifService } from "./vttif_service.ts";
import type { PlacementParts } from "./placement_parts.ts";

/** What the API reads and steers. */
export interface ApiContext {
  switch: Switch;
  hosts(): ReadonlyMap<string, Link>;
  /** Rules the operator wants on each host (re-sent when a host reconnects). */
  hostRules: Map<string, Map<string, WireRule>>;
  startedAt: number;
  version: string;
  vttif: VttifService;
  adapt: AdaptLoop;
  events: EventHub;
  /** Who may join under which name (hosts.json). */
  book: HostBook;
  /** What was refused of hosts' traffic reports. */
  reports: ReportGate;
  /** Requests to this API refused, by reason (from the guard). */
  apiRefusals?: Readonly<Record<string, number>>;
  /** Connections to the join listener refused before admission, by reason. */
  connectionRefusals?: Readonly<Record<string, number>>;
  /** Hosts' `listening` messages not acted on, by reason (proxy/reachability.ts). */
  reachabilityRefusals?: Readonly<Record<string, number>>;
  /** CA discoveries the join listener answered. */
  discoveries?: Readonly<DiscoveryCount>;
  /** Keeps the operator's rules and adaptation settings across restarts (operator.json). */
  persist?(): Promise<void>;
  /** Revokes host `name`: its record goes, its key is denied, its link closes. */
  revokeHost(name: string): Promise<HostRecord | null>;
  /** The proxy's clock (the system's unless a test drives time). */
  clock?: Clock;
  /**
   * The underlay (`GET /api/underlay`), VM placement advice and the migrations carried out
   * (`GET`/`PUT /api/placement`).
   */
  placement?: Pick<PlacementParts, "underlay" | "service" | "migrator">;
}

/** The time as the proxy sees it. */
export function nowOf(ctx: Pick<ApiContext, "clock">): number {
  return (ctx.clock ?? systemClock).now();
}
