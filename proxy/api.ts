/**
 * The proxy's control API (HTTP + JSON): what the CLI subcommands, the operator and the live
 * page talk to. Bound to loopback by default. Every request needs a credential (the bearer
 * token in `state-dir/api.token`, or the page's session cookie) and must name this API in
 * Host; see api_guard.ts.
 *
 *     POST   /api/login                       a one-time login link for the page (`agent page`)
 *     GET    /login?code=                     trades the code for a session cookie
 *     GET    /api/status                      hosts, ports, counters, drops
 *     GET    /api/topology[?format=dot]       smoothed matrix, inferred topology, recent changes
 *     GET    /metrics                         Prometheus text format
 *     GET    /api/events[?stream]             recent events; server-sent events with ?stream
 *     GET    /api/vms                         VMs: MAC, host, first/last seen, since when there
 *     GET    /api/adapt                       adaptation settings, links, decisions, reactions
 *     PUT    /api/adapt   {enabled?, budget?, pin?, unpin?, forbid?, unforbid?}
 *     GET    /api/paths                       every communicating VM pair: star or direct, and why
 *     GET    /api/links                       star links (hosts) and fast paths
 *     GET    /api/rules                       the proxy's rules and each host's
 *     POST   /api/rules   {host?, src, dst, target, reason?}
 *     DELETE /api/rules?host=&src=&dst=
 *     GET    /, /app.js, /vendor/...          the live page (see page.ts)
 *
 * @module
 */

import { type Clock, systemClock } from "../agent/clock.ts";
import { macOfWire, parseWireRule, type WireRule } from "../agent/control/messages.ts";
import { formatMac, parseMac } from "../agent/switch/ethernet.ts";
import { DEVICE_PORT, hostOfPort } from "../agent/switch/port_name.ts";
import { LAN_HOST, vmHosts } from "./vm_hosts.ts";
import type { ForwardingRule } from "../agent/switch/forwarding_table.ts";
import type { Switch } from "../agent/switch/switch.ts";
import type { Link } from "../agent/link/link.ts";
import { ProtocolError } from "../agent/link/wire.ts";
import type { VttifService } from "./vttif_service.ts";
import type { AdaptLoop } from "../adapt/loop.ts";
import type { EventHub } from "./events.ts";
import type { HostBook, HostRecord } from "./host_book.ts";
import type { ReportGate } from "./report_gate.ts";
import { type ApiGuard, LOGIN_CODE_MS } from "./api_guard.ts";
import { renderMetrics } from "./metrics.ts";
import { hostPair, splitPair } from "../adapt/planner.ts";
import { toDot } from "./topology_format.ts";
import { pageHandler } from "./page.ts";

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
  /** Keeps the operator's rules and adaptation settings across restarts (operator.json). */
  persist?(): Promise<void>;
  /** Revokes host `name`: its record goes, its key is denied, its link closes. */
  revokeHost(name: string): Promise<HostRecord | null>;
  /** The proxy's clock (the system's unless a test drives time). */
  clock?: Clock;
}

/** The time as the proxy sees it. */
function nowOf(ctx: Pick<ApiContext, "clock">): number {
  return (ctx.clock ?? systemClock).now();
}

/** Key of a host rule in {@linkcode ApiContext.hostRules}. */
export function hostRuleKey(src: string | null, dst: string | null): string {
  return `${src ?? "*"}>${dst ?? "*"}`;
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body, null, 2) + "\n", {
    status,
    headers: { "content-type": "application/json" },
  });
}

function problem(status: number, message: string): Response {
  return json({ error: message }, status);
}

function ruleView(r: ForwardingRule) {
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
 * Builds the request handler; `guard` decides who may use it (see api_guard.ts).
 */
export function apiHandler(
  ctx: ApiContext,
  guard: ApiGuard,
): (req: Request) => Promise<Response> {
  return async (req) => {
    const refusal = guard.check(req, nowOf(ctx));
    if (refusal) return refusal;
    const url = new URL(req.url);
    try {
      if (url.pathname === "/api/status" && req.method === "GET") return json(status(ctx));
      if (url.pathname === "/metrics" && req.method === "GET") {
        return new Response(renderMetrics(ctx), {
          headers: { "content-type": "text/plain; version=0.0.4" },
        });
      }
      if (url.pathname === "/api/events" && req.method === "GET") {
        const stream = (req.headers.get("accept") ?? "").includes("text/event-stream") ||
          url.searchParams.has("stream");
        return stream ? ctx.events.sse(req.signal) : json(ctx.events.recent());
      }
      if (url.pathname === "/api/vms" && req.method === "GET") return json(vms(ctx));
      if (url.pathname === "/api/topology" && req.method === "GET") {
        const snap = ctx.vttif.snapshot();
        return url.searchParams.get("format") === "dot"
          ? new Response(toDot(snap), { headers: { "content-type": "text/vnd.graphviz" } })
          : json(snap);
      }
      if (url.pathname === "/api/adapt") {
        if (req.method === "GET") return json(adaptView(ctx));
        if (req.method === "PUT") {
          const view = changeAdapt(ctx, await req.json().catch(() => null));
          return await kept(ctx, json(view));
        }
        return problem(405, "Cannot use /api/adapt with this method: use GET or PUT");
      }
      if (url.pathname === "/api/login" && req.method === "POST") {
        // A one-time link for the live page, for whoever holds the API token (`agent page`).
        const host = req.headers.get("host") ?? url.host;
        return json({
          url: `http://${host}/login?code=${guard.loginCode(nowOf(ctx))}`,
          validForMs: LOGIN_CODE_MS,
        });
      }
      if (url.pathname === "/api/hosts" && req.method === "GET") return json(hostsView(ctx));
      if (url.pathname === "/api/hosts/revoke" && req.method === "POST") {
        return await revoke(ctx, await req.json().catch(() => null));
      }
      if (url.pathname === "/api/paths" && req.method === "GET") return json(paths(ctx));
      if (url.pathname === "/api/links" && req.method === "GET") return json(links(ctx));
      if (url.pathname === "/api/rules") {
        if (req.method === "GET") return json(rules(ctx));
        if (req.method === "POST") {
          return await kept(ctx, addRule(ctx, await req.json().catch(() => null)));
        }
        if (req.method === "DELETE") {
          return await kept(
            ctx,
            delRule(
              ctx,
              url.searchParams.get("host"),
              url.searchParams.get("src"),
              url.searchParams.get("dst"),
            ),
          );
        }
        return problem(405, `Cannot ${req.method} /api/rules: use GET, POST or DELETE`);
      }
      if (req.method === "GET") {
        const page = pageHandler(req);
        if (page) return page;
      }
      return problem(404, `Cannot find ${url.pathname}: see /api/status and /api/rules`);
    } catch (e) {
      if (e instanceof ProtocolError || e instanceof TypeError) return problem(400, e.message);
      throw e;
    }
  };
}

/** The host book as `agent hosts` shows it: every admitted host, online or not; revocations. */
function hostsView(ctx: ApiContext) {
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

async function revoke(ctx: ApiContext, body: unknown): Promise<Response> {
  const name = (body as { name?: unknown } | null)?.name;
  if (typeof name !== "string" || name.length === 0 || name.length > 63) {
    return problem(400, 'Cannot revoke: send {"name": "HOST"}');
  }
  const r = await ctx.revokeHost(name);
  if (!r) return problem(404, `Cannot revoke ${name}: no such host in the book (see agent hosts)`);
  return json({ revoked: { name: r.name, key: r.key } });
}

function status(ctx: ApiContext) {
  const sw = ctx.switch;
  const counters = Object.fromEntries(sw.counters());
  return {
    role: "proxy",
    version: ctx.version,
    memory: Deno.memoryUsage(),
    uptimeMs: nowOf(ctx) - ctx.startedAt,
    hosts: [...ctx.hosts().values()].map((l) => ({ name: l.peer, port: l.name, ...l.stats() })),
    ports: counters,
    macs: sw.macs.size,
    rules: sw.rules.size,
    drops: sw.drops,
    reportRefusals: ctx.reports.refused,
  };
}

/**
 * After a successful change, keeps the operator's state; a change that is in force but could
 * not be kept says so (500) instead of being lost silently at the next restart.
 */
async function kept(ctx: ApiContext, res: Response): Promise<Response> {
  if (res.status >= 300 || !ctx.persist) return res;
  try {
    await ctx.persist();
    return res;
  } catch (e) {
    return problem(
      500,
      `The change is in force but cannot be kept across a restart: ${(e as Error).message}`,
    );
  }
}

/** The operator's run-time state as operator.json keeps it. */
export function operatorState(ctx: Pick<ApiContext, "switch" | "hostRules" | "adapt">) {
  const hostRules: Record<string, WireRule[]> = {};
  for (const [name, m] of ctx.hostRules) if (m.size) hostRules[name] = [...m.values()];
  const a = ctx.adapt.settings;
  return {
    proxyRules: ctx.switch.rules.list().map((r) => {
      const v = ruleView(r);
      return { src: v.src, dst: v.dst, target: v.target, owner: v.owner, reason: v.reason };
    }),
    hostRules,
    adapt: { enabled: a.enabled, budget: a.budget, pins: a.pins, forbids: a.forbids },
  };
}

function rules(ctx: ApiContext) {
  const hosts: Record<string, WireRule[]> = {};
  for (const [name, m] of ctx.hostRules) hosts[name] = [...m.values()];
  return { proxy: ctx.switch.rules.list().map(ruleView), hosts };
}

/** Installs an operator's rule on the proxy's own switch (from the API or operator.json). */
export function addProxyRule(sw: Switch, rule: WireRule): ForwardingRule {
  return sw.rules.add({
    src: macOfWire(rule.src),
    dst: macOfWire(rule.dst),
    target: rule.target,
    owner: rule.owner ?? "operator",
    reason: rule.reason ?? "",
  });
}

function addRule(ctx: ApiContext, body: unknown): Response {
  const rule = parseWireRule(body);
  const host = (body as Record<string, unknown>)?.host;
  if (host === undefined || host === null) {
    return json({ added: ruleView(addProxyRule(ctx.switch, rule)), on: "proxy" }, 201);
  }
  if (typeof host !== "string") return problem(400, "Cannot add rule: host must be a host name");
  let wanted = ctx.hostRules.get(host);
  if (!wanted) ctx.hostRules.set(host, wanted = new Map());
  const withOwner = { ...rule, owner: rule.owner ?? "operator" };
  wanted.set(hostRuleKey(rule.src, rule.dst), withOwner);
  const link = ctx.hosts().get(host);
  const sent = link?.sendControl({ type: "rule-add", rule: withOwner }) ?? false;
  return json({ added: withOwner, on: host, delivered: sent }, 201);
}

function delRule(
  ctx: ApiContext,
  host: string | null,
  src: string | null,
  dst: string | null,
): Response {
  const s = src === null || src === "*" ? null : src;
  const d = dst === null || dst === "*" ? null : dst;
  if (host === null) {
    const r = ctx.switch.rules.remove(
      s === null ? null : parseMac(s),
      d === null ? null : parseMac(d),
    );
    return r
      ? json({ removed: ruleView(r), on: "proxy" })
      : problem(404, "Cannot remove rule: no such rule on the proxy");
  }
  const wanted = ctx.hostRules.get(host);
  if (!wanted?.delete(hostRuleKey(s, d))) {
    return problem(404, `Cannot remove rule: no such rule for host ${host}`);
  }
  const sent = ctx.hosts().get(host)?.sendControl({ type: "rule-del", src: s, dst: d }) ?? false;
  return json({ removed: { src: s, dst: d }, on: host, delivered: sent });
}

function adaptView(ctx: ApiContext) {
  const a = ctx.adapt;
  return {
    settings: a.settings,
    links: [...a.pairs.values()].map((p) => ({ pair: p.pair, phase: p.phase, since: p.since })),
    decisions: a.lastPlan?.decisions ?? [],
    reactions: a.reactions,
    moves: a.moves,
  };
}

function pairArg(v: unknown, what: string): string {
  if (!Array.isArray(v) || v.length !== 2 || typeof v[0] !== "string" || typeof v[1] !== "string") {
    throw new TypeError(`Cannot change adaptation: ${what} takes two host names`);
  }
  return hostPair(v[0], v[1]);
}

function changeAdapt(ctx: ApiContext, body: unknown) {
  if (typeof body !== "object" || body === null) {
    throw new TypeError("Cannot change adaptation: send a JSON object");
  }
  const b = body as Record<string, unknown>;
  const s = { ...ctx.adapt.settings };
  if ("enabled" in b) {
    if (typeof b.enabled !== "boolean") {
      throw new TypeError("Cannot change adaptation: enabled is true or false");
    }
    s.enabled = b.enabled;
  }
  if ("budget" in b) {
    const k = b.budget;
    if (!(k === null || k === "auto" || (typeof k === "number" && Number.isInteger(k) && k >= 0))) {
      throw new TypeError("Cannot change adaptation: budget is auto or a whole number >= 0");
    }
    s.budget = k === "auto" ? null : k as number | null;
  }
  if ("pin" in b) s.pins = [...new Set([...s.pins, pairArg(b.pin, "pin")])];
  if ("unpin" in b) s.pins = s.pins.filter((p) => p !== pairArg(b.unpin, "unpin"));
  if ("forbid" in b) s.forbids = [...new Set([...s.forbids, pairArg(b.forbid, "forbid")])];
  if ("unforbid" in b) s.forbids = s.forbids.filter((p) => p !== pairArg(b.unforbid, "unforbid"));
  ctx.adapt.settings = s;
  ctx.adapt.reconcile(nowOf(ctx));
  return adaptView(ctx);
}

function paths(ctx: ApiContext) {
  const hostOf = vmHosts(ctx.switch.macs, nowOf(ctx));
  const decisions = new Map((ctx.adapt.lastPlan?.decisions ?? []).map((d) => [d.pair, d]));
  return ctx.vttif.vttif.current().graph.edges.map((e) => {
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
    const d = decisions.get(pair);
    const direct = st?.phase === "up";
    return {
      ...base,
      path: direct ? "direct" : "star",
      since: st?.since ?? null,
      reason: d?.reason ?? (direct ? "direct" : "star: not planned"),
      link: st ? { pair, phase: st.phase } : null,
    };
  });
}

function links(ctx: ApiContext) {
  return {
    star: [...ctx.hosts().values()].map((l) => ({ host: l.peer, ...l.stats() })),
    fastPaths: [...ctx.adapt.pairs.values()].map((p) => ({
      hosts: splitPair(p.pair),
      phase: p.phase,
      since: p.since,
    })),
  };
}

function vms(ctx: ApiContext) {
  return [...ctx.switch.macs.entries()].map(([mac, e]) => ({
    mac: formatMac(mac),
    host: hostOfPort(e.port) ?? (e.port === DEVICE_PORT ? LAN_HOST : e.port),
    firstSeen: e.firstSeen,
    lastSeen: e.lastSeen,
    since: e.since,
  })).sort((a, b) => (a.mac < b.mac ? -1 : 1));
}
