/**
 * `/metrics` in the Prometheus text exposition format: per-link frames, bytes and drops, the
 * switch's drops by reason, table sizes, VTTIF's matrix size and tick time, fast paths by
 * phase, and the adaptation's reaction times.
 *
 * @module
 */

import type { ApiContext } from "./api.ts";

const NEEDS_ESCAPE = /[\\"\n]/;

/**
 * Hosts up to which /metrics has series per host (ports, link RTTs, star links); beyond, their
 * sums and RTT quantiles (`GET /metrics?hosts=all` for every series): 10,000 hosts made a
 * dozen families of 10,000 series, 3.9 MB and 156 ms a scrape. Per host, `/api/status` pages.
 */
export const METRICS_PER_HOST_MAX = 1_000;

/** Escapes a label value (most need nothing: host and port names are plain). */
export function label(v: string): string {
  if (!NEEDS_ESCAPE.test(v)) return v;
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** Builds metric families in order, each with HELP and TYPE once. */
class Exposition {
  readonly #lines: string[] = [];

  family(
    name: string,
    type: "counter" | "gauge",
    help: string,
    samples: [Record<string, string>, number][],
  ) {
    this.#lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    // One line per sample, built without intermediate arrays: at 10,000 hosts a family is
    // 10,000 lines and /metrics has a dozen of them.
    for (const [labels, value] of samples) {
      let l = "";
      for (const k in labels) l += `${l ? "," : ""}${k}="${label(labels[k])}"`;
      this.#lines.push(`${name}${l ? `{${l}}` : ""} ${Number.isFinite(value) ? value : 0}`);
    }
  }

  text(): string {
    return this.#lines.join("\n") + "\n";
  }
}

/**
 * The proxy's metrics, from the parts of the proxy they read.
 *
 * @example A proxy whose switch has received one frame from host h1
 * ```ts
 * import { renderMetrics } from "./metrics.ts";
 * import { VttifService } from "./vttif_service.ts";
 * import { AdaptLoop } from "../adapt/loop.ts";
 * import { Switch } from "../agent/switch/switch.ts";
 * import { EMPTY_GRAPH } from "../inference/mod.ts";
 * const sw = new Switch({ role: "proxy", maxMacs: 100, macAgeMs: 60_000, moveQuietMs: 0 });
 * sw.attach({ name: "host:h1", kind: "host", send: () => true });
 * const frame = new Uint8Array(10 + 60); // virtio-net header, then Ethernet
 * frame.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1], 10); // dst, src
 * sw.forward(frame, "host:h1", Date.now());
 * const vttif = new VttifService({
 *   updateIntervalMs: 1000,
 *   smoothingMs: 5000,
 *   threshold: 0.1,
 *   hysteresisMs: 3000,
 *   maxPairs: 100,
 * });
 * const adapt = new AdaptLoop({
 *   hosts: () => new Map(),
 *   listenAddress: () => null,
 *   keyOf: () => null,
 *   vmHosts: () => new Map(),
 *   topology: () => EMPTY_GRAPH,
 * }, { enabled: true, budget: null, pins: [], forbids: [], keepMargin: 0.5 });
 * const text = renderMetrics({ switch: sw, hosts: () => new Map(), vttif, adapt });
 * if (!text.includes('\nvnet_port_rx_frames_total{port="host:h1"} 1\n')) throw new Error(text);
 * ```
 */
export function renderMetrics(ctx: MetricsContext, perHost = true): string {
  const x = new Exposition();
  portFamilies(x, ctx, perHost);
  reasonFamilies(x, ctx);
  stateFamilies(x, ctx);
  adaptFamilies(x, ctx);
  return x.text();
}

/** What /metrics reads. */
export type MetricsContext =
  & Pick<ApiContext, "switch" | "hosts" | "vttif" | "adapt">
  & Partial<
    Pick<
      ApiContext,
      "reports" | "apiRefusals" | "connectionRefusals" | "discoveries" | "reachabilityRefusals"
    >
  >;

/** A port counter's fields. */
type Counters = {
  rxFrames: number;
  rxBytes: number;
  txFrames: number;
  txBytes: number;
  txDrops: number;
};

/**
 * Per port and per host link: frames, bytes, drops, round-trip times; without `perHost`, the
 * host ports summed (port="hosts") and the links' RTT as quantiles.
 */
function portFamilies(x: Exposition, ctx: MetricsContext, perHost: boolean): void {
  const ports = [...ctx.switch.counters()];
  const per = (f: (c: Counters) => number) => {
    const rows: [Record<string, string>, number][] = [];
    let hosts = 0;
    for (const [port, c] of ports) {
      if (perHost || !port.startsWith("host:")) rows.push([{ port }, f(c)]);
      else hosts += f(c);
    }
    if (!perHost) rows.push([{ port: "hosts" }, hosts]);
    return rows;
  };
  x.family(
    "vnet_port_rx_frames_total",
    "counter",
    "Frames the proxy's switch received per port.",
    per((c) => c.rxFrames),
  );
  x.family(
    "vnet_port_rx_bytes_total",
    "counter",
    "Bytes received per port.",
    per((c) => c.rxBytes),
  );
  x.family("vnet_port_tx_frames_total", "counter", "Frames sent per port.", per((c) => c.txFrames));
  x.family("vnet_port_tx_bytes_total", "counter", "Bytes sent per port.", per((c) => c.txBytes));
  x.family(
    "vnet_port_tx_drops_total",
    "counter",
    "Frames a port refused (full queue).",
    per((c) => c.txDrops),
  );
  const links = [...ctx.hosts().values()].map((l) => ({ host: l.peer, ...l.stats() }));
  const rtts = links.filter((l) => l.rttMs !== null).map((l) => l.rttMs! / 1000);
  x.family(
    "vnet_link_rtt_seconds",
    "gauge",
    perHost
      ? "Keepalive round-trip time of each host link."
      : "Keepalive round-trip times of the host links: quantiles.",
    perHost
      ? links.filter((l) => l.rttMs !== null).map((l) => [{ host: l.host }, l.rttMs! / 1000])
      : quantiles(rtts),
  );
  x.family(
    "vnet_link_queue_drops_total",
    "counter",
    "Frames dropped because a link's send queue was full.",
    perHost
      ? links.map((l) => [{ host: l.host }, l.frameDrops])
      : [[{}, links.reduce((n, l) => n + l.frameDrops, 0)]],
  );
}

/** The median, 99th percentile and largest of `values`, as `quantile` samples. */
function quantiles(values: number[]): [Record<string, string>, number][] {
  if (values.length === 0) return [];
  const sorted = values.toSorted((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return [[{ quantile: "0.5" }, at(0.5)], [{ quantile: "0.99" }, at(0.99)], [
    { quantile: "1" },
    sorted.at(-1)!,
  ]];
}

/** Every counter kept by reason: drops, refusals, suppressed and flooded requests. */
function reasonFamilies(x: Exposition, ctx: MetricsContext): void {
  // Each a record of counters by reason (the switch's drops are a typed one).
  const byReason: [string, string, object | undefined][] = [
    ["vnet_switch_drops_total", "Frames the switch dropped, by reason.", ctx.switch.drops],
    [
      "vnet_report_refusals_total",
      "Traffic reports refused whole, and report entries refused or clamped, by reason.",
      ctx.reports?.refused,
    ],
    [
      "vnet_connection_refusals_total",
      "Connections to the join listener refused or dropped before admission, by reason.",
      ctx.connectionRefusals,
    ],
    ["vnet_api_refusals_total", "Control API requests refused, by reason.", ctx.apiRefusals],
    [
      "vnet_reachability_refusals_total",
      "Hosts' listening messages not acted on (each would be a dial by the proxy), by reason.",
      ctx.reachabilityRefusals,
    ],
    [
      "vnet_neighbour_suppressed_total",
      "ARP requests and neighbour solicitations not flooded: answered by the proxy, sent to " +
      "the owner alone, or dropped because the owner is behind the asking port.",
      ctx.switch.neighbours?.suppressed,
    ],
    [
      "vnet_neighbour_floods_total",
      "ARP requests and neighbour solicitations flooded, by why they could not be answered.",
      ctx.switch.neighbours?.floods,
    ],
    [
      "vnet_neighbour_refusals_total",
      "Address claims (ARP, neighbour advertisements) not learned, by reason.",
      ctx.switch.neighbours?.refusals,
    ],
  ];
  for (const [name, help, counts] of byReason) {
    if (!counts) continue;
    const rows = Object.entries(counts as Record<string, number>);
    x.family(name, "counter", help, rows.map(([reason, n]) => [{ reason }, n]));
  }
}

/** Sizes of the proxy's tables and of what VTTIF holds. */
function stateFamilies(x: Exposition, ctx: MetricsContext): void {
  x.family("vnet_hosts", "gauge", "Hosts connected.", [[{}, ctx.hosts().size]]);
  if (ctx.discoveries) {
    x.family(
      "vnet_ca_discoveries_total",
      "counter",
      "CA discoveries answered: hosts learning the proxy's CA before they join.",
      [[{}, ctx.discoveries.answered]],
    );
  }
  x.family("vnet_macs", "gauge", "MAC addresses in the proxy's table.", [[
    {},
    ctx.switch.macs.size,
  ]]);
  x.family("vnet_rules", "gauge", "Forwarding rules on the proxy.", [[{}, ctx.switch.rules.size]]);
  x.family("vnet_neighbours", "gauge", "IP addresses the proxy answers for (ARP, ND).", [[
    {},
    ctx.switch.neighbours?.table.size ?? 0,
  ]]);
  const snap = ctx.vttif.snapshot(0);
  x.family("vnet_matrix_pairs", "gauge", "VM pairs in the smoothed traffic matrix.", [[
    {},
    ctx.vttif.vttif.smoothedMatrix().length,
  ]]);
  x.family("vnet_topology_edges", "gauge", "Edges of the inferred topology.", [[
    {},
    snap.graph.edges.length,
  ]]);
  x.family("vnet_vttif_tick_seconds", "gauge", "Time the last inference step took.", [[
    {},
    snap.lastTickMs / 1000,
  ]]);
  x.family("vnet_topology_changes_total", "counter", "Topology changes declared.", [[
    {},
    ctx.vttif.events.length,
  ]]);
}

/** Fast paths, reactions and migrations followed. */
function adaptFamilies(x: Exposition, ctx: MetricsContext): void {
  const phases = new Map<string, number>([["connecting", 0], ["up", 0], ["draining", 0]]);
  for (const p of ctx.adapt.pairs.values()) phases.set(p.phase, (phases.get(p.phase) ?? 0) + 1);
  x.family(
    "vnet_fast_paths",
    "gauge",
    "Fast-path links by phase.",
    [...phases].map(([phase, n]) => [{ phase }, n]),
  );
  const reactions = ctx.adapt.reactions;
  x.family(
    "vnet_adapt_reaction_seconds",
    "gauge",
    "Last VNET reaction: topology change declared -> rules active on every host.",
    reactions.length ? [[{}, reactions[reactions.length - 1].ms / 1000]] : [],
  );
  x.family("vnet_adapt_reactions_total", "counter", "Reactions measured.", [[
    {},
    reactions.length,
  ]]);
  const moves = ctx.adapt.moves;
  x.family("vnet_vm_moves_total", "counter", "VM migrations followed.", [[{}, moves.length]]);
  x.family(
    "vnet_vm_move_seconds",
    "gauge",
    "Last migration: first frame on the new host -> forwarding updated on every host.",
    moves.length ? [[{}, moves[moves.length - 1].ms / 1000]] : [],
  );
}
