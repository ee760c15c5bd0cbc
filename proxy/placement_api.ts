/**
 * The control API's placement part, for proxy/api.ts's routes and `/metrics`:
 *
 *     GET /api/underlay       UnderlayReply: per host pair and star link what was measured,
 *                             what the planner takes, where the bottleneck is
 *     GET /api/placement      PlacementReply: settings, slots, pins, a fresh plan and its
 *                             reasons, the move in progress and the recent ones
 *     PUT /api/placement      {maxMoves?, minGain?, moveCost?, latencyWeight?, pin?, unpin?,
 *                              slots?: [HOST, N|null], migrate?: bool}
 *
 * @module
 */

import { label as escapeLabel } from "./metrics.ts";
import type { ApiContext } from "./api_context.ts";
import { nowOf } from "./api_context.ts";
import type { PlacementReply, UnderlayReply } from "./api_types.ts";

/** Why a placement route cannot answer: this proxy was built without placement. */
function missing(what: string): never {
  throw new TypeError(`Cannot show ${what}: this proxy runs without placement`);
}

/** `GET /api/underlay`. */
export function underlayReply(ctx: ApiContext): UnderlayReply {
  if (!ctx.placement) missing("the underlay");
  return ctx.placement.underlay.view(ctx.hosts().keys(), nowOf(ctx));
}

/** `GET /api/placement`. */
export function placementReply(ctx: ApiContext): PlacementReply {
  if (!ctx.placement) missing("placement");
  const now = nowOf(ctx);
  const { service, migrator } = ctx.placement;
  return { ...service.view(now, migrator.resting(now)), migration: migrator.view(now) };
}

/**
 * `PUT /api/placement` (and `migrate` in `PUT /api/adapt`): applies the change, asks for a
 * plan at once, and answers as the GET does.
 *
 * @throws {TypeError} naming the bad field; nothing is changed then
 */
export function changePlacement(ctx: ApiContext, body: unknown): PlacementReply {
  if (!ctx.placement) missing("placement");
  const { service, migrator } = ctx.placement;
  if (typeof body !== "object" || body === null) {
    throw new TypeError("Cannot change placement: send a JSON object");
  }
  const { migrate, ...rest } = body as Record<string, unknown>;
  if (migrate !== undefined && typeof migrate !== "boolean") {
    throw new TypeError("Cannot change placement: migrate is true or false");
  }
  if (migrate === true && !migrator.hook) {
    throw new TypeError(
      "Cannot turn migration on: this proxy has no --migrate-hook (`agent advise` advises)",
    );
  }
  service.change(rest);
  if (typeof migrate === "boolean") migrator.enabled = migrate;
  migrator.replan();
  return placementReply(ctx);
}

/** Adds one metric family: its HELP and TYPE lines and a line per (labels, value) row. */
type Family = (name: string, type: string, help: string, rows: [string, number][]) => void;

/** `{k="v"}`, the value escaped as the text format wants. */
const label = (k: string, v: string) => `{${k}="${escapeLabel(v)}"}`;

/** Placement and underlay metric lines in the Prometheus text format (appended to /metrics). */
export function placementMetrics(ctx: ApiContext, perHost = true): string {
  if (!ctx.placement) return "";
  const now = nowOf(ctx);
  const lines: string[] = [];
  const family: Family = (name, type, help, rows) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, v] of rows) lines.push(`${name}${labels} ${Number.isFinite(v) ? v : 0}`);
  };
  underlayMetrics(ctx.placement.underlay, now, family, perHost);
  const { service, migrator } = ctx.placement;
  const outcomes = new Map<string, number>();
  for (const m of migrator.history) {
    if (m.outcome) outcomes.set(m.outcome, (outcomes.get(m.outcome) ?? 0) + 1);
  }
  family(
    "vnet_placement_moves",
    "gauge",
    "VM migrations in the recent history (last 100), by outcome.",
    ["kept", "stopover", "failed", "reverted"].map((
      o,
    ) => [label("outcome", o), outcomes.get(o) ?? 0]),
  );
  family(
    "vnet_placement_cost",
    "gauge",
    "Cost of where the VMs are now (path-seconds per second).",
    [
      ["", service.cost(now)],
    ],
  );
  family("vnet_placement_migrate", "gauge", "1 when the proxy carries out placement plans.", [
    ["", migrator.enabled && migrator.hook ? 1 : 0],
  ]);
  return lines.join("\n") + "\n";
}

/**
 * The underlay's metric families: only what was measured, since the full view (planned paths,
 * pairs never measured) is O(hosts²), and /metrics must stay cheap at thousands of hosts (it
 * runs on the proxy's one thread).
 */
function underlayMetrics(
  underlay: NonNullable<ApiContext["placement"]>["underlay"],
  now: number,
  family: Family,
  perHost: boolean,
): void {
  // Without per-host series, the host pairs alone (few: those VM traffic or probes measured).
  const pairs = underlay.book.estimates(now).filter((p) => perHost || !p.pair.startsWith("("));
  family(
    "vnet_underlay_rtt_ms",
    "gauge",
    "Smoothed round trip per star link (proxy|host), from keepalives, and per host pair, " +
      "from its fast path's keepalives as its hosts report them, or from an active probe.",
    pairs.filter((p) => p.rttMs !== null).map((p) => [label("pair", p.pair), p.rttMs!]),
  );
  family(
    "vnet_underlay_bandwidth_bytes_per_second",
    "gauge",
    "Largest achieved throughput of the last one to two minutes, per star link and host pair.",
    pairs.filter((p) => p.bandwidthBytesPerSec !== null)
      .map((p) => [label("pair", p.pair), p.bandwidthBytesPerSec!]),
  );
  family(
    "vnet_underlay_refused_total",
    "counter",
    "Underlay samples refused, by reason.",
    Object.entries(underlay.book.refused).map(([k, v]) => [label("reason", k), v]),
  );
  family(
    "vnet_underlay_path_rtt_refused_total",
    "counter",
    "Entries of hosts' fast-path RTT reports refused, by reason.",
    Object.entries(underlay.pathRttRefused).map(([k, v]) => [label("reason", k), v]),
  );
  const probes = underlay.probes.counts();
  family(
    "vnet_underlay_probes_total",
    "counter",
    "Active RTT probes of host pairs with no RTT of their own, by outcome: sent, answered " +
      "(RTT taken), failed (the host could not time it), unanswered.",
    (["sent", "answered", "failed", "unanswered"] as const)
      .map((k) => [label("outcome", k), probes[k]]),
  );
  family(
    "vnet_underlay_probe_results_refused_total",
    "counter",
    "Hosts' probe-result answers refused, by reason (unasked, late, out of range).",
    Object.entries(probes.refused).map(([k, v]) => [label("reason", k), v]),
  );
}
