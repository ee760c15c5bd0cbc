/**
 * The live topology page: the proxy, its hosts and their VMs as a graph, the star backbone and
 * the fast paths between hosts, and the application topology VTTIF inferred between VMs; a
 * panel with the topology class and an event timeline fed by the proxy's event stream.
 *
 *     EventSource(/api/events?stream) -> timeline, and a refresh
 *     refresh (each event, and every few s): /api/links, /api/vms, /api/topology, /api/adapt,
 *       /api/underlay
 *       -> model (model.js) -> graph diff (graph.js) -> panel and data attributes (here)
 *
 * For tests and scripts: `window.vnetGraph` is the cytoscape instance (node ids `proxy`,
 * `host:<name>`, `vm:<mac>`; edge classes `star`, `fast`, `app`, `attach`), and `<body>`
 * carries counts in data attributes (hosts, hostsOnline, vms, starEdges, fastPaths, fastPathsUp,
 * appEdges, topology, events, refreshes, ready).
 *
 * @typedef {import("../api_types.ts").AdaptReply} AdaptReply
 * @typedef {import("../api_types.ts").TopologyReply} TopologyReply
 * @typedef {import("./model.js").OverlayModel} OverlayModel
 */

import { EVENT_TYPES } from "./constants.js";
import { ago, clock, describe, rate } from "./format.js";
import { GraphView } from "./graph.js";
import { graphElements, layout, overlayModel, StarRates } from "./model.js";

const REFRESH_MS = 3000;
/** Coalesces bursts of events (a topology change brings several) into one refresh. */
const EVENT_REFRESH_DELAY_MS = 150;
const MAX_TIMELINE = 300;

const $ = (id) => document.getElementById(id);
const body = document.body;

const graph = new GraphView($("graph"));
globalThis.vnetGraph = graph.cy;
const starRates = new StarRates();

/** Turns the API's answers into the graph and the panel. */
function render(links, vms, topo, adapt, underlay) {
  const model = overlayModel(links, vms, topo);
  const placed = layout(model);
  graph.update(graphElements(model, placed, { rates: starRates, now: Date.now() }), placed.pos);
  showTopology(topo);
  showOverlay(model, adapt);
  showUnderlay(underlay);
  showCounts(topo.classification.kind);
}

/** Rows the underlay table shows at most (the pairs placement has a price for). */
const UNDERLAY_ROWS = 12;

/**
 * The panel's underlay section: per host pair the bandwidth and RTT placement takes, and where
 * the RTT comes from (the pair's fast path, a probe, or its two star links).
 *
 * @param {{ planned: { pair: string, bandwidthBytesPerSec: number | null, rttMs: number | null, via: string, rttVia: string }[] }} u
 */
function showUnderlay(u) {
  const priced = u.planned.filter((p) => p.via !== "unknown" || p.rttMs !== null);
  const rows = priced.slice(0, UNDERLAY_ROWS).map((p) => {
    const tr = document.createElement("tr");
    tr.dataset.pair = p.pair;
    const cells = [
      p.pair,
      p.bandwidthBytesPerSec === null ? "–" : rate(p.bandwidthBytesPerSec),
      p.rttMs === null ? "–" : `${p.rttMs.toFixed(1)} ms`,
      p.rttVia,
    ];
    for (const text of cells) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    return tr;
  });
  $("underlay-rows").replaceChildren(...rows);
  body.dataset.underlayPairs = String(rows.length);
}

/**
 * The panel's topology section: class, summary, size, degrees, heaviest edge.
 *
 * @param {TopologyReply} topo
 */
function showTopology(topo) {
  const c = topo.classification;
  $("topology-kind").textContent = c.kind;
  $("topology-summary").textContent = c.summary;
  $("topology-size").textContent = `${c.evidence.vms} / ${c.evidence.edges}`;
  $("topology-degrees").textContent = Object.entries(c.evidence.degrees)
    .map(([deg, n]) => `${n}× ${deg}`).join(", ") || "–";
  $("topology-max").textContent = topo.graph.maxBytesPerSec > 0
    ? rate(topo.graph.maxBytesPerSec)
    : "–";
}

/**
 * The panel's overlay section: hosts, VMs, fast paths, adaptation, last reaction.
 *
 * @param {OverlayModel} model
 * @param {AdaptReply} adapt
 */
function showOverlay({ hosts, hostNames, vmHost, links }, adapt) {
  const online = hostNames.filter((n) => hosts.get(n).online).length;
  $("overlay-hosts").textContent = `${online} online` +
    (online < hostNames.length ? `, ${hostNames.length - online} offline` : "");
  $("overlay-vms").textContent = String(vmHost.size);
  const fastUp = links.fastPaths.filter((f) => f.phase === "up").length;
  $("overlay-fast").textContent = `${fastUp} up` +
    (links.fastPaths.length > fastUp ? `, ${links.fastPaths.length - fastUp} changing` : "");
  const s = adapt.settings;
  $("overlay-adapt").textContent = !s.enabled
    ? "off (star only)"
    : `on, budget ${s.budget === null ? "auto" : s.budget}` +
      (s.pins.length ? `, ${s.pins.length} pinned` : "") +
      (s.forbids.length ? `, ${s.forbids.length} forbidden` : "");
  const last = adapt.reactions[adapt.reactions.length - 1];
  $("overlay-reaction").textContent = last
    ? `${last.ms} ms, ${last.links} fast paths (${ago(last.activeAt)})`
    : "–";
}

/** The counts on `<body>` that tests and scripts read; `ready` once the first render is done. */
function showCounts(kind) {
  body.dataset.hosts = graph.count("node.host");
  body.dataset.hostsOnline = graph.count("node.host[?online]");
  body.dataset.vms = graph.count("node.vm");
  body.dataset.starEdges = graph.count("edge.star");
  body.dataset.fastPaths = graph.count("edge.fast");
  body.dataset.fastPathsUp = graph.count("edge.fast.up");
  body.dataset.appEdges = graph.count("edge.app");
  body.dataset.topology = kind;
  body.dataset.refreshes = String(Number(body.dataset.refreshes ?? 0) + 1);
  body.dataset.ready = "true";
}

async function getJson(path) {
  const res = await fetch(path, { cache: "no-store" });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status} ${await res.text()}`);
  return res.json();
}

let running = null;
let again = false;

/** Fetches everything and renders; calls during a refresh fold into one more. */
function refresh() {
  if (running) {
    again = true;
    return running;
  }
  running = (async () => {
    do {
      again = false;
      try {
        const [links, vms, topo, adapt, underlay] = await Promise.all(
          ["/api/links", "/api/vms", "/api/topology", "/api/adapt", "/api/underlay"].map(getJson),
        );
        render(links, vms, topo, adapt, underlay);
        $("graph-error").textContent = "";
      } catch (e) {
        $("graph-error").textContent = `Cannot refresh: ${e.message}`;
      }
    } while (again);
  })().finally(() => running = null);
  return running;
}

let pending = null;
function refreshSoon() {
  if (pending !== null) return;
  pending = setTimeout(() => {
    pending = null;
    refresh();
  }, EVENT_REFRESH_DELAY_MS);
}

// ---------------------------------------------------------------- timeline

/** Newest first; keyed by content so the backfill and the stream never show one twice. */
let timeline = [];
const seen = new Set();

function addEvents(events, fresh) {
  let changed = false;
  for (const e of events) {
    const key = JSON.stringify(e);
    if (seen.has(key)) continue;
    seen.add(key);
    timeline.push({ event: e, key, fresh });
    changed = true;
  }
  if (!changed) return;
  timeline.sort((x, y) => y.event.at - x.event.at);
  if (timeline.length > MAX_TIMELINE) {
    for (const t of timeline.slice(MAX_TIMELINE)) seen.delete(t.key);
    timeline = timeline.slice(0, MAX_TIMELINE);
  }
  const list = $("timeline");
  const items = timeline.map((t) => {
    const li = document.createElement("li");
    li.dataset.type = t.event.type;
    if (t.fresh) li.className = "fresh";
    const time = document.createElement("time");
    time.dateTime = new Date(t.event.at).toISOString();
    time.textContent = clock(t.event.at);
    const text = document.createElement("span");
    text.textContent = describe(t.event);
    li.append(time, text);
    return li;
  });
  for (const t of timeline) t.fresh = false;
  list.replaceChildren(...items);
  body.dataset.events = String(timeline.length);
}

function connect() {
  const conn = $("conn");
  const source = new EventSource("/api/events?stream");
  source.onopen = () => {
    conn.dataset.state = "live";
    conn.textContent = "live";
    // Backfill after subscribing, so nothing falls between the list and the stream.
    getJson("/api/events").then((recent) => addEvents(recent, false)).catch(() => {});
    refresh();
  };
  source.onerror = () => {
    conn.dataset.state = "down";
    conn.textContent = "reconnecting";
  };
  for (const type of EVENT_TYPES) {
    source.addEventListener(type, (m) => {
      try {
        addEvents([JSON.parse(m.data)], true);
      } catch {
        return;
      }
      refreshSoon();
    });
  }
}

globalThis.addEventListener("resize", () => graph.fit());
connect();
refresh();
setInterval(refresh, REFRESH_MS);
