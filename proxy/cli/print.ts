/**
 * The readable forms of the API's replies that the CLI prints without `--json`: one function
 * per reply type, each taking the reply as proxy/api_types.ts defines it and a line printer.
 * Fields a reply from an older proxy may lack are read with a fallback, so a mixed-version
 * CLI prints what it can instead of failing.
 *
 * @module
 */

import { formatRate } from "../../agent/rate.ts";
import type {
  AdaptReply,
  EventsReply,
  HostsReply,
  LinksReply,
  PathsReply,
  RulesReply,
  StatusReply,
  TopologyReply,
  VmsReply,
} from "../api_types.ts";

/** Prints one line (or several joined by newlines). */
export type Print = (s: string) => void;

/**
 * Formats rows as an aligned text table.
 *
 * @example
 * ```ts
 * import { table } from "./print.ts";
 * if (table(["a", "bb"], [["xyz", 1]]) !== "a    bb\nxyz  1") throw new Error();
 * ```
 */
export function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  return cells.map((r) => r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd()).join("\n");
}

/** ms since epoch as ISO time to the second; 0 or absent as "-". */
function when(ms: number | null | undefined): string {
  return typeof ms === "number" && ms > 0 ? new Date(ms).toISOString().slice(0, 19) + "Z" : "-";
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function rtt(ms: number | null): string {
  return ms === null ? "-" : ms.toFixed(2);
}

/** `agent status`: a headline, each host's star link, and the drops that happened. */
export function printStatus(s: StatusReply, out: Print): void {
  const hosts = s.hosts ?? [];
  out(
    `proxy ${s.version}, up ${
      Math.round(Number(s.uptimeMs) / 1000)
    } s, ${s.macs} MACs, ${s.rules} rules`,
  );
  out(table(
    ["host", "rx frames", "rx bytes", "tx frames", "tx drops", "rtt ms"],
    hosts.map((h) => [h.name, h.rxFrames, h.rxBytes, h.frames, h.frameDrops, rtt(h.rttMs)]),
  ));
  const drops = Object.entries(s.drops ?? {}).filter(([, n]) => n > 0);
  if (drops.length) out(`drops: ${drops.map(([k, n]) => `${k}=${n}`).join(" ")}`);
}

/** `agent topology`: the class, the graph's edges, the heaviest matrix pairs, recent changes. */
export function printTopology(t: TopologyReply, out: Print): void {
  const matrix = t.matrix ?? [];
  const events = t.events ?? [];
  out(`topology: ${t.classification.summary}`);
  if (t.graph.edges.length) {
    out(table(
      ["vm a", "vm b", "traffic", "weight"],
      t.graph.edges.map((e) => [e.a, e.b, formatRate(e.bytesPerSec), e.weight.toFixed(2)]),
    ));
  }
  out(`\nsmoothed matrix (${matrix.length} pairs, heaviest first):`);
  out(
    table(
      ["src", "dst", "traffic"],
      matrix.slice(0, 40).map((m) => [m.src, m.dst, formatRate(m.bytesPerSec)]),
    ),
  );
  if (events.length) {
    out("\nchanges:");
    for (const e of events.slice(-10)) out(`  ${iso(e.detectedAt)}  ${e.from} -> ${e.to}`);
  }
}

/** `agent links`: every star link, then every fast path. */
export function printLinks(l: LinksReply, out: Print): void {
  const star = l.star ?? [];
  const fast = l.fastPaths ?? [];
  out(table(
    ["link", "kind", "state", "rx frames", "tx frames", "drops", "rtt ms"],
    [
      ...star.map((h) => [
        `proxy-${h.host}`,
        "star",
        "up",
        h.rxFrames,
        h.frames,
        h.frameDrops,
        rtt(h.rttMs),
      ]),
      ...fast.map((f) => [f.hosts.join("-"), "fast path", f.phase, "-", "-", "-", "-"]),
    ],
  ));
}

/** `agent vms`: each VM's host and times. */
export function printVms(rows: VmsReply, out: Print): void {
  out(table(
    ["vm", "host", "first seen", "last seen", "there since"],
    rows.map((v) => [v.mac, v.host, iso(v.firstSeen), iso(v.lastSeen), iso(v.since)]),
  ));
}

/** `agent events`: one line per event, its own fields as JSON. */
export function printEvents(rows: EventsReply, out: Print): void {
  for (const e of rows) {
    const { type, at, ...rest } = e;
    out(`${iso(at)}  ${type}  ${JSON.stringify(rest)}`);
  }
}

/** `agent paths`: per communicating VM pair, the hosts, the path and why. */
export function printPaths(rows: PathsReply, out: Print): void {
  if (rows.length === 0) return out("no communicating VM pairs in the inferred topology");
  out(table(
    ["vm a", "vm b", "hosts", "traffic", "path", "since", "why"],
    rows.map((r) => [
      r.a,
      r.b,
      `${r.hostA ?? "?"}-${r.hostB ?? "?"}`,
      formatRate(r.bytesPerSec),
      r.path,
      r.since ? new Date(r.since).toISOString().slice(11, 19) : "-",
      r.reason,
    ]),
  ));
}

/** `agent adapt`: the settings, the last reaction, and the plan's decision per host pair. */
export function printAdapt(a: AdaptReply, out: Print): void {
  const s = a.settings;
  const reactions = a.reactions ?? [];
  out(
    `adaptation ${s.enabled ? "on" : "off"}, k=${s.budget ?? "auto"}, pins ${
      s.pins.join(" ") || "-"
    }, ` +
      `forbidden ${s.forbids.join(" ") || "-"}`,
  );
  if (reactions.length) out(`last VNET reaction: ${reactions[reactions.length - 1].ms} ms`);
  const decisions = a.decisions ?? [];
  if (decisions.length) {
    out(
      table(
        ["host pair", "rank", "path", "why"],
        decisions.map((d) => [d.pair, d.rank, d.direct ? "direct" : "star", d.reason]),
      ),
    );
  }
}

/** `agent rules list`: the proxy's rules with their counters, then each host's. */
export function printRules(r: RulesReply, out: Print): void {
  const rows: (string | number)[][] = [];
  for (const x of r.proxy ?? []) {
    rows.push(["proxy", x.src ?? "*", x.dst ?? "*", x.target, x.frames, x.bytes, x.owner]);
  }
  for (const [host, list] of Object.entries(r.hosts ?? {})) {
    for (const x of list) {
      rows.push([host, x.src ?? "*", x.dst ?? "*", x.target, "-", "-", String(x.owner)]);
    }
  }
  out(
    rows.length
      ? table(["on", "src", "dst", "target", "frames", "bytes", "owner"], rows)
      : "no rules",
  );
}

/** `agent hosts`: every admitted host, then the revoked keys. */
export function printHosts(body: HostsReply, out: Print): void {
  const hosts = body.hosts ?? [];
  out(
    hosts.length
      ? table(
        ["host", "online", "key", "certificate", "expires", "first joined", "last joined"],
        hosts.map((h) => [
          h.name,
          h.online ? "yes" : "no",
          h.key ?? "-",
          h.certSerial ?? "-",
          when(h.certExpires),
          when(h.firstJoined),
          when(h.lastSeen),
        ]),
      )
      : "no hosts admitted yet",
  );
  const revoked = body.revoked ?? [];
  if (revoked.length) {
    out("\nrevoked keys:");
    out(table(["key", "was", "revoked"], revoked.map((r) => [r.key, r.name, when(r.at)])));
  }
}
