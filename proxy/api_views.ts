/**
 * The control API's read-only answers: each builds one reply of proxy/api_types.ts from the
 * proxy's state, so the compiler holds the server to the types the CLI and the page read.
 *
 *     ApiContext (api_context.ts) -> statusView, vmsView, pathsView, linksView, rulesView,
 *                                    adaptView, hostsView -> api.ts sends the reply as JSON
 *
 * @module
 */

import { formatMac, type Mac } from "../agent/switch/ethernet.ts";
import type { MacEntry, MacTable } from "../agent/switch/mac_table.ts";
import type { ForwardingRule } from "../agent/switch/forwarding_table.ts";
import { DEVICE_PORT, hostOfPort } from "../agent/switch/port_name.ts";
import type { WireRule } from "../agent/control/messages.ts";
import { hostPair, splitPair } from "../adapt/planner.ts";
import { type ApiContext, nowOf } from "./api_context.ts";
import {
  type AdaptReply,
  type HostsReply,
  LAN_HOST,
  type LinksReply,
  type Page,
  type PathsReply,
  type PathView,
  type RulesReply,
  type RuleView,
  type StatusReply,
  type VmsReply,
} from "./api_types.ts";
import { vmHosts } from "./vm_hosts.ts";

/** A rule of the proxy's switch as the API shows it: MACs as text, with its counters. */
export function ruleView(r: ForwardingRule): RuleView {
  return {
    id: r.id,
    src: r.src === null ? null : formatMac(r.src),
    dst: r.dst === null ? null : formatMac(r.dst),
    target: r.target,
    owner: r.owner,
    reason: r.reason,
    frames: r.frames,
    bytes: r.bytes,
  };
}

/**
 * The page a request asks for with `?offset=N&limit=M` (see {@linkcode Page}).
 *
 * @throws {TypeError} naming the parameter when it is not a whole number >= 0 (a 400)
 * @example
 * ```ts
 * import { pageOf } from "./api_views.ts";
 * const p = pageOf(new URL("http://x/api/vms?offset=100&limit=50"));
 * if (p.offset !== 100 || p.limit !== 50) throw new Error();
 * if (pageOf(new URL("http://x/api/vms")).limit !== Infinity) throw new Error("all by default");
 * ```
 */
export function pageOf(url: URL): Page {
  const read = (name: string, fallback: number) => {
    const v = url.searchParams.get(name);
    if (v === null) return fallback;
    const n = Number(v);
    if (v.trim() === "" || !Number.isInteger(n) || n < 0) {
      throw new TypeError(`Cannot page the reply: ${name} is a whole number >= 0, got ${v}`);
    }
    return n;
  };
  return { offset: read("offset", 0), limit: read("limit", Infinity) };
}

const ALL: Page = { offset: 0, limit: Infinity };

/**
 * `GET /api/status`: the star links of `page` of the hosts (all by default), their ports and
 * the others, the MAC and rule counts, drops.
 */
export function statusView(ctx: ApiContext, page: Page = ALL): StatusReply {
  const sw = ctx.switch;
  const links = [...ctx.hosts().values()];
  const whole = page.offset === 0 && page.limit === Infinity;
  const shown = whole ? links : links.slice(page.offset, page.offset + page.limit);
  const counters = sw.counters();
  const ports = whole ? Object.fromEntries(counters) : Object.fromEntries([
    ...shown.flatMap((l) => {
      const c = counters.get(l.name);
      return c ? [[l.name, c] as const] : [];
    }),
    // The ports that are not a host's (the LAN device).
    ...[...counters].filter(([port]) => hostOfPort(port) === null),
  ]);
  return {
    role: "proxy",
    version: ctx.version,
    memory: Deno.memoryUsage(),
    uptimeMs: nowOf(ctx) - ctx.startedAt,
    hosts: shown.map((l) => ({ name: l.peer, port: l.name, ...l.stats() })),
    hostCount: links.length,
    ports,
    macs: sw.macs.size,
    rules: sw.rules.size,
    drops: sw.drops,
    reportRefusals: ctx.reports.refused,
  };
}

/** The MAC table's entries in MAC order, as of its version (the entries themselves are live). */
const sortedMacs = new WeakMap<
  MacTable,
  { version: number; entries: [Mac, Readonly<MacEntry>][] }
>();

/**
 * `GET /api/vms`: where each MAC the proxy knows is, sorted by MAC; `page` of them (all by
 * default). Sorted as numbers, once per change of the table, and formatted only for the
 * page: a page of a hundred thousand VMs costs the page.
 */
export function vmsView(ctx: ApiContext, page: Page = ALL): VmsReply {
  const macs = ctx.switch.macs;
  let sorted = sortedMacs.get(macs);
  if (sorted?.version !== macs.version) {
    const entries = [...macs.entries()].sort((a, b) => a[0] - b[0]);
    sortedMacs.set(macs, sorted = { version: macs.version, entries });
  }
  return sorted.entries.slice(page.offset, page.offset + page.limit).map(([mac, e]) => ({
    mac: formatMac(mac),
    host: hostOfPort(e.port) ?? (e.port === DEVICE_PORT ? LAN_HOST : e.port),
    firstSeen: e.firstSeen,
    lastSeen: e.lastSeen,
    since: e.since,
  }));
}

/** `GET /api/paths`: per edge of the inferred topology, star or direct, since when, why. */
export function pathsView(ctx: ApiContext): PathsReply {
  const hostOf = vmHosts(ctx.switch.macs, nowOf(ctx));
  return ctx.vttif.vttif.current().graph.edges.map((e): PathView => {
    const ha = hostOf.get(e.a) ?? null;
    const hb = hostOf.get(e.b) ?? null;
    const base = {
      a: e.a,
      b: e.b,
      hostA: ha,
      hostB: hb,
      bytesPerSec: e.bytesPerSec,
      weight: e.weight,
    };
    if (ha === null || hb === null) {
      return {
        ...base,
        path: "star",
        since: null,
        reason: "a VM is on the proxy's LAN or unknown",
      };
    }
    if (ha === hb) {
      return {
        ...base,
        path: "same host",
        since: null,
        reason: "both VMs on one host: no overlay hop",
      };
    }
    const pair = hostPair(ha, hb);
    const st = ctx.adapt.pairs.get(pair);
    // The loop's word, not the plan's: a wanted link that is not up is the star, and why.
    const why = ctx.adapt.explain(pair, nowOf(ctx));
    const direct = st?.phase === "up";
    return {
      ...base,
      path: direct ? "direct" : "star",
      since: st?.since ?? null,
      reason: why.reason,
      link: st ? { pair, phase: st.phase } : null,
      origin: direct ? why.origin : null,
      state: why.state,
      upAfterMs: why.upAfterMs,
    };
  });
}

/** `GET /api/links`: the star links (one per host) and the fast paths. */
export function linksView(ctx: ApiContext): LinksReply {
  return {
    star: [...ctx.hosts().values()].map((l) => ({
      host: l.peer,
      ...l.stats(),
      reach: ctx.adapt.reachOf(l.peer),
    })),
    fastPaths: [...ctx.adapt.pairs.values()].map((p) => ({
      hosts: splitPair(p.pair),
      phase: p.phase,
      since: p.since,
      origin: ctx.adapt.explain(p.pair, nowOf(ctx)).origin,
    })),
  };
}

/** `GET /api/rules`: the proxy's rules and the ones the operator wants on each host. */
export function rulesView(ctx: ApiContext): RulesReply {
  const hosts: Record<string, WireRule[]> = {};
  for (const [name, m] of ctx.hostRules) hosts[name] = [...m.values()];
  return { proxy: ctx.switch.rules.list().map(ruleView), hosts };
}

/** `GET /api/adapt`: the settings, the fast paths, the last plan's decisions, reactions. */
export function adaptView(ctx: ApiContext): AdaptReply {
  const a = ctx.adapt;
  return {
    settings: a.settings,
    links: [...a.pairs.values()].map((p) => ({
      pair: p.pair,
      phase: p.phase,
      since: p.since,
      origin: a.explain(p.pair, nowOf(ctx)).origin,
    })),
    // The plan's rank, the loop's truth: direct only with the link up, and why not.
    decisions: (a.lastPlan?.decisions ?? []).map((d) => {
      const why = a.explain(d.pair, nowOf(ctx));
      return { ...d, direct: why.path === "direct", reason: why.reason };
    }),
    reactions: a.reactions,
    moves: a.moves,
  };
}

/** The host book as `agent hosts` shows it: every admitted host, online or not; revocations. */
export function hostsView(ctx: ApiContext): HostsReply {
  const online = ctx.hosts();
  return {
    hosts: ctx.book.list().map((r) => ({
      name: r.name,
      key: r.key,
      certSerial: r.certSerial,
      certExpires: r.certExpires,
      firstJoined: r.firstJoined,
      lastSeen: r.lastSeen,
      online: online.has(r.name),
    })),
    revoked: ctx.book.revoked(),
  };
}
