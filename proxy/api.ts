/**
 * The proxy's control API (HTTP + JSON): what the CLI subcommands, the operator and the live
 * page talk to. Bound to loopback by default. Every request needs a credential (the bearer
 * token in `state-dir/api.token`, or the page's session cookie) and must name this API in
 * Host; see api_guard.ts.
 *
 *     POST   /api/login                       a one-time login link for the page (`agent page`)
 *     GET    /login?code=                     trades the code for a session cookie
 *     GET    /api/status[?offset=&limit=]     hosts (a page of them), ports, counters, drops
 *     GET    /api/topology[?format=dot]       smoothed matrix, inferred topology, recent changes
 *     GET    /metrics                         Prometheus text format
 *     GET    /api/events[?stream]             recent events; server-sent events with ?stream
 *     GET    /api/vms[?offset=&limit=]        VMs: MAC, host, first/last seen, since when there
 *     GET    /api/adapt                       adaptation settings, links, decisions, reactions
 *     PUT    /api/adapt   {enabled?, budget?, pin?, unpin?, forbid?, unforbid?, migrate?}
 *     GET    /api/paths                       every communicating VM pair: star or direct, and why
 *     GET    /api/underlay                    per host pair: RTT, bandwidth, bottleneck
 *     GET    /api/placement                   where VMs should live: plan, reasons, migrations
 *     PUT    /api/placement   {maxMoves?, minGain?, moveCost?, pin?, unpin?, slots?, migrate?}
 *     GET    /api/links                       star links (hosts) and fast paths
 *     GET    /api/hosts                       the host book: admitted hosts, revoked keys
 *     POST   /api/hosts/revoke   {name}       closes a host's links, denies its key
 *     GET    /api/rules                       the proxy's rules and each host's
 *     POST   /api/rules   {host?, src, dst, target, reason?}
 *     DELETE /api/rules?host=&src=&dst=
 *     GET    /, /app.js, /vendor/...          the live page (see page.ts)
 *
 * Every reply is a type of api_types.ts (shared with the CLI and the page); the read-only ones
 * are built in api_views.ts from the {@linkcode ApiContext} (api_context.ts).
 *
 * @module
 */

import { macOfWire, parseWireRule, type WireRule } from "../agent/control/messages.ts";
import { parseMac } from "../agent/switch/ethernet.ts";
import type { ForwardingRule } from "../agent/switch/forwarding_table.ts";
import type { Switch } from "../agent/switch/switch.ts";
import { ProtocolError } from "../agent/link/wire.ts";
import { type ApiGuard, LOGIN_CODE_MS } from "../agent/api_guard.ts";
import { METRICS_PER_HOST_MAX, renderMetrics } from "./metrics.ts";
import { hostPair } from "../adapt/planner.ts";
import { toDot } from "./topology_format.ts";
import { pageHandler } from "./page.ts";
import {
  changePlacement,
  placementMetrics,
  placementReply,
  underlayReply,
} from "./placement_api.ts";
import { type ApiContext, nowOf } from "./api_context.ts";
import {
  adaptView,
  hostsView,
  linksView,
  pageOf,
  pathsView,
  rulesView,
  ruleView,
  statusView,
  vmsView,
} from "./api_views.ts";
import type {
  AdaptReply,
  ErrorReply,
  LoginReply,
  RevokeReply,
  RuleAddedReply,
  RuleRemovedReply,
} from "./api_types.ts";
import type { OperatorState } from "./operator_state.ts";
import type { PlacementParts } from "./placement_parts.ts";

export type { ApiContext } from "./api_context.ts";

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
  const reply: ErrorReply = { error: message };
  return json(reply, status);
}

/** What one route is given: the request, its URL, and what the API serves from. */
interface RouteCall {
  req: Request;
  url: URL;
  ctx: ApiContext;
  guard: ApiGuard;
}

/** Answers one method on one path. */
type Route = (call: RouteCall) => Response | Promise<Response>;

/** The routes of one path, and what another method is told (absent: not found). */
interface Resource {
  methods: Readonly<Record<string, Route>>;
  wrongMethod?(method: string): string;
}

/** A request's JSON body; null when it has none or it is not JSON (the handlers say why). */
function bodyOf(req: Request): Promise<unknown> {
  return req.json().catch(() => null);
}

/** Every path of the API (the page's files aside): adding an endpoint is adding an entry. */
const RESOURCES: ReadonlyMap<string, Resource> = new Map<string, Resource>([
  ["/api/status", { methods: { GET: ({ url, ctx }) => json(statusView(ctx, pageOf(url))) } }],
  ["/metrics", {
    methods: {
      GET: ({ url, ctx }) => {
        const perHost = url.searchParams.get("hosts") === "all" ||
          ctx.hosts().size <= METRICS_PER_HOST_MAX;
        return new Response(renderMetrics(ctx, perHost) + placementMetrics(ctx, perHost), {
          headers: { "content-type": "text/plain; version=0.0.4" },
        });
      },
    },
  }],
  ["/api/events", {
    methods: {
      GET: ({ req, url, ctx }) => {
        const stream = (req.headers.get("accept") ?? "").includes("text/event-stream") ||
          url.searchParams.has("stream");
        return stream ? ctx.events.sse(req.signal) : json(ctx.events.recent());
      },
    },
  }],
  ["/api/vms", { methods: { GET: ({ url, ctx }) => json(vmsView(ctx, pageOf(url))) } }],
  ["/api/topology", {
    methods: {
      GET: ({ url, ctx }) => {
        const snap = ctx.vttif.snapshot();
        return url.searchParams.get("format") === "dot"
          ? new Response(toDot(snap), { headers: { "content-type": "text/vnd.graphviz" } })
          : json(snap);
      },
    },
  }],
  ["/api/adapt", {
    methods: {
      GET: ({ ctx }) => json(adaptReply(ctx)),
      PUT: async ({ req, ctx }) => kept(ctx, json(changeAdapt(ctx, await bodyOf(req)))),
    },
    wrongMethod: () => "Cannot use /api/adapt with this method: use GET or PUT",
  }],
  ["/api/login", { methods: { POST: login } }],
  ["/api/hosts", { methods: { GET: ({ ctx }) => json(hostsView(ctx)) } }],
  ["/api/hosts/revoke", {
    methods: { POST: async ({ req, ctx }) => revoke(ctx, await bodyOf(req)) },
  }],
  ["/api/paths", { methods: { GET: ({ ctx }) => json(pathsView(ctx)) } }],
  ["/api/links", { methods: { GET: ({ ctx }) => json(linksView(ctx)) } }],
  ["/api/underlay", { methods: { GET: ({ ctx }) => json(underlayReply(ctx)) } }],
  ["/api/placement", {
    methods: {
      GET: ({ ctx }) => json(placementReply(ctx)),
      PUT: async ({ req, ctx }) => kept(ctx, json(changePlacement(ctx, await bodyOf(req)))),
    },
    wrongMethod: () => "Cannot use /api/placement with this method: use GET or PUT",
  }],
  ["/api/rules", {
    methods: {
      GET: ({ ctx }) => json(rulesView(ctx)),
      POST: async ({ req, ctx }) => kept(ctx, addRule(ctx, await bodyOf(req))),
      DELETE: ({ url, ctx }) => {
        const q = url.searchParams;
        return kept(ctx, delRule(ctx, q.get("host"), q.get("src"), q.get("dst")));
      },
    },
    wrongMethod: (method) => `Cannot ${method} /api/rules: use GET, POST or DELETE`,
  }],
]);

/**
 * Builds the request handler; `guard` decides who may use it (see api_guard.ts). A request
 * the guard lets through goes to its path's route; a GET of no API path to the page's files.
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
      const resource = RESOURCES.get(url.pathname);
      // Own keys only: a method named like an Object.prototype member finds no route.
      const route = resource && Object.hasOwn(resource.methods, req.method)
        ? resource.methods[req.method]
        : undefined;
      if (route) return await route({ req, url, ctx, guard });
      if (resource?.wrongMethod) return problem(405, resource.wrongMethod(req.method));
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

/** A one-time link for the live page, for whoever holds the API token (`agent page`). */
function login({ req, url, ctx, guard }: RouteCall): Response {
  const host = req.headers.get("host") ?? url.host;
  const reply: LoginReply = {
    url: `${url.protocol}//${host}/login?code=${guard.loginCode(nowOf(ctx))}`,
    validForMs: LOGIN_CODE_MS,
  };
  return json(reply);
}

async function revoke(ctx: ApiContext, body: unknown): Promise<Response> {
  const name = (body as { name?: unknown } | null)?.name;
  if (typeof name !== "string" || name.length === 0 || name.length > 63) {
    return problem(400, 'Cannot revoke: send {"name": "HOST"}');
  }
  const r = await ctx.revokeHost(name);
  if (!r) return problem(404, `Cannot revoke ${name}: no such host in the book (see agent hosts)`);
  const reply: RevokeReply = { revoked: { name: r.name, key: r.key } };
  return json(reply);
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
export function operatorState(
  ctx: Pick<ApiContext, "switch" | "hostRules" | "adapt"> & {
    placement?: Pick<PlacementParts, "service" | "migrator">;
  },
): OperatorState {
  const hostRules: Record<string, WireRule[]> = {};
  for (const [name, m] of ctx.hostRules) if (m.size) hostRules[name] = [...m.values()];
  const a = ctx.adapt.settings;
  const p = ctx.placement;
  return {
    proxyRules: ctx.switch.rules.list().map((r) => {
      const v = ruleView(r);
      return { src: v.src, dst: v.dst, target: v.target, owner: v.owner, reason: v.reason };
    }),
    hostRules,
    adapt: { enabled: a.enabled, budget: a.budget, pins: a.pins, forbids: a.forbids },
    placement: p
      ? {
        settings: { ...p.service.settings },
        slots: Object.fromEntries([...p.service.operatorSlots].sort()),
        pins: [...p.service.pinned].sort(),
        migrate: p.migrator.enabled,
      }
      : null,
  };
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
    const reply: RuleAddedReply = { added: ruleView(addProxyRule(ctx.switch, rule)), on: "proxy" };
    return json(reply, 201);
  }
  if (typeof host !== "string") return problem(400, "Cannot add rule: host must be a host name");
  let wanted = ctx.hostRules.get(host);
  if (!wanted) ctx.hostRules.set(host, wanted = new Map());
  const withOwner = { ...rule, owner: rule.owner ?? "operator" };
  wanted.set(hostRuleKey(rule.src, rule.dst), withOwner);
  const link = ctx.hosts().get(host);
  const sent = link?.sendControl({ type: "rule-add", rule: withOwner }) ?? false;
  const reply: RuleAddedReply = { added: withOwner, on: host, delivered: sent };
  return json(reply, 201);
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
    if (!r) return problem(404, "Cannot remove rule: no such rule on the proxy");
    const reply: RuleRemovedReply = { removed: ruleView(r), on: "proxy" };
    return json(reply);
  }
  const wanted = ctx.hostRules.get(host);
  if (!wanted?.delete(hostRuleKey(s, d))) {
    return problem(404, `Cannot remove rule: no such rule for host ${host}`);
  }
  const sent = ctx.hosts().get(host)?.sendControl({ type: "rule-del", src: s, dst: d }) ?? false;
  const reply: RuleRemovedReply = { removed: { src: s, dst: d }, on: host, delivered: sent };
  return json(reply);
}

function pairArg(v: unknown, what: string): string {
  if (!Array.isArray(v) || v.length !== 2 || typeof v[0] !== "string" || typeof v[1] !== "string") {
    throw new TypeError(`Cannot change adaptation: ${what} takes two host names`);
  }
  return hostPair(v[0], v[1]);
}

function changeAdapt(ctx: ApiContext, body: unknown): AdaptReply {
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
  // `agent adapt set migrate on|off`: checked before anything changes.
  if ("migrate" in b) changePlacement(ctx, { migrate: b.migrate });
  ctx.adapt.settings = s;
  ctx.adapt.reconcile(nowOf(ctx));
  return adaptReply(ctx);
}

/** The adaptation's view, with whether migration is on when this proxy has placement. */
function adaptReply(ctx: ApiContext): AdaptReply {
  const migrate = ctx.placement ? { migrate: ctx.placement.migrator.enabled } : {};
  return { ...adaptView(ctx), ...migrate };
}
