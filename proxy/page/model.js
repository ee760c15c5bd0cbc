// @ts-check
/**
 * The live page's model: from the API's replies to what the graph shows, with no DOM and no
 * cytoscape, so it runs (and is tested) anywhere.
 *
 *     /api/links, /api/vms, /api/topology -> overlayModel -> layout -> graphElements
 *
 * Layout (computed here, not by a force layout, so nothing jumps between refreshes): hosts in
 * one row sorted by name, their VMs in rows below them, the proxy above. Fast paths are arcs
 * above the host row and application edges arcs below the VM rows; an arc's height grows with
 * the distance it spans, so arcs between the same columns never share a path.
 *
 * Element ids: `proxy`, `host:<name>`, `vm:<mac>`, `star:<host>`, `attach:<mac>`,
 * `fast:<a>|<b>`, `app:<a>|<b>`; classes `proxy`, `host` (+ `offline`), `vm` (+ `unknown`),
 * `star`, `attach`, `fast` (+ its phase), `app`.
 *
 * @typedef {import("../api_types.ts").LinksReply} LinksReply
 * @typedef {import("../api_types.ts").VmsReply} VmsReply
 * @typedef {import("../api_types.ts").TopologyReply} TopologyReply
 * @typedef {import("../api_types.ts").StarLinkView} StarLinkView
 * @typedef {{ name: string, online: boolean, stats?: StarLinkView }} HostModel
 * @typedef {{
 *   links: LinksReply,
 *   topo: TopologyReply,
 *   hosts: Map<string, HostModel>,
 *   hostNames: string[],
 *   vmsByHost: Map<string, string[]>,
 *   lanVms: string[],
 *   unknownVms: string[],
 *   vmHost: Map<string, string | null>,
 * }} OverlayModel
 * @typedef {{ x: number, y: number }} Point
 * @typedef {{ pos: Map<string, Point>, columnOf: Map<string, number> }} Placement
 * @typedef {{ group: "nodes" | "edges", data: Record<string, unknown> & { id: string },
 *   classes: string }} GraphElement
 */

import { LAN_HOST } from "./constants.js";
import { byName, rate } from "./format.js";

const COLUMN = 190;
/** Width of a VM's slot; the graph's style sizes VM nodes from it. */
export const VM_W = 132;
const VM_ROW = 46;
const VMS_PER_ROW = 3;
const HOST_Y = 0;
const FIRST_VM_Y = 78;
const ARC = 34;
/** A star link's rate is measured over at least this long, so it does not flicker. */
const RATE_WINDOW_MS = 500;

/**
 * Who is where: hosts (online from the star links, offline when only VMs or fast paths name
 * them), each host's VMs, the VMs on the proxy's LAN, and VMs VTTIF still remembers but the
 * proxy's MAC table no longer has (their host left, or they went quiet), shown apart.
 *
 * @param {LinksReply} links
 * @param {VmsReply} vms
 * @param {TopologyReply} topo
 * @returns {OverlayModel}
 */
export function overlayModel(links, vms, topo) {
  /** @type {Map<string, HostModel>} */
  const hosts = new Map();
  for (const s of links.star) hosts.set(s.host, { name: s.host, online: true, stats: s });
  /** @type {Map<string, string[]>} */
  const vmsByHost = new Map();
  /** @type {string[]} */
  const lanVms = [];
  /** @type {Map<string, string | null>} */
  const vmHost = new Map();
  for (const v of vms) {
    vmHost.set(v.mac, v.host);
    if (v.host === LAN_HOST) {
      lanVms.push(v.mac);
      continue;
    }
    if (!hosts.has(v.host)) hosts.set(v.host, { name: v.host, online: false });
    const list = vmsByHost.get(v.host) ?? [];
    vmsByHost.set(v.host, list);
    list.push(v.mac);
  }
  for (const f of links.fastPaths) {
    for (const h of f.hosts) if (!hosts.has(h)) hosts.set(h, { name: h, online: false });
  }
  /** @type {string[]} */
  const unknownVms = [];
  for (const mac of topo.graph.vms) {
    if (!vmHost.has(mac)) {
      vmHost.set(mac, null);
      unknownVms.push(mac);
    }
  }
  const hostNames = [...hosts.keys()].sort(byName);
  for (const list of vmsByHost.values()) list.sort();
  return { links, topo, hosts, hostNames, vmsByHost, lanVms, unknownVms, vmHost };
}

/**
 * Host columns left to right, each VM's row and slot under its host, and a last column
 * without a host for VMs whose location the proxy no longer knows.
 *
 * @param {OverlayModel} model
 * @returns {Placement}
 */
export function layout({ hostNames, vmsByHost, lanVms, unknownVms }) {
  /** @type {Map<string, Point>} */
  const pos = new Map();
  let x = 0;
  /** @type {Map<string, number>} */
  const columnOf = new Map();
  /** @type {{ name: string | null, vms: string[] }[]} */
  const columns = hostNames.map((name) => ({ name, vms: vmsByHost.get(name) ?? [] }));
  if (unknownVms.length) columns.push({ name: null, vms: unknownVms });
  columns.forEach(({ name, vms }, i) => {
    const perRow = Math.min(VMS_PER_ROW, Math.max(1, vms.length));
    const width = Math.max(COLUMN, perRow * VM_W + 24);
    const cx = x + width / 2;
    if (name !== null) {
      columnOf.set(name, i);
      pos.set(`host:${name}`, { x: cx, y: HOST_Y });
    }
    vms.forEach((mac, k) => {
      const row = Math.floor(k / perRow);
      const inRow = Math.min(perRow, vms.length - row * perRow);
      const slot = k % perRow;
      const y = FIRST_VM_Y + row * VM_ROW;
      pos.set(`vm:${mac}`, { x: cx + (slot - (inRow - 1) / 2) * VM_W, y });
    });
    x += width;
  });
  const mid = x / 2;
  const span = Math.max(1, hostNames.length - 1);
  const proxyY = HOST_Y - 150 - Math.min(span, 8) * ARC / 2;
  pos.set("proxy", { x: mid, y: proxyY });
  lanVms.forEach((mac, k) => {
    pos.set(`vm:${mac}`, { x: mid + 150 + k * VM_W, y: proxyY });
  });
  return { pos, columnOf };
}

/**
 * Bend (px, perpendicular) for an arc from left node `a` to right node `b`.
 *
 * @param {number} ax
 * @param {number} bx
 * @param {boolean} up above the nodes (fast paths) or below (application edges)
 * @returns {number}
 */
export function bend(ax, bx, up) {
  const d = Math.abs(bx - ax) / COLUMN;
  const h = 24 + ARC * Math.max(0, d - 1) + 10 * Math.min(d, 1);
  // For a left-to-right edge cytoscape's positive distance points down the screen.
  return up ? -2 * h : 2 * h;
}

/**
 * Each star link's rate, from its byte counters between refreshes at least
 * {@linkcode RATE_WINDOW_MS} apart; a refresh sooner than that repeats the last label.
 */
export class StarRates {
  /** @type {Map<string, { at: number, total: number, label: string }>} */
  #before = new Map();

  /**
   * The label for `host`'s star link, whose counters add up to `total` bytes at `now`.
   *
   * @param {string} host
   * @param {number} total
   * @param {number} now ms
   * @returns {string}
   */
  label(host, total, now) {
    const before = this.#before.get(host);
    let label = "";
    if (before && now - before.at >= RATE_WINDOW_MS && total >= before.total) {
      label = rate((total - before.total) * 1000 / (now - before.at));
    }
    if (!before || now - before.at >= RATE_WINDOW_MS) {
      this.#before.set(host, { at: now, total, label });
    } else label = before.label;
    return label;
  }

  /**
   * Forgets hosts that are not online: a host that comes back starts a new measurement.
   *
   * @param {(host: string) => boolean} online
   */
  keepOnly(online) {
    for (const name of this.#before.keys()) if (!online(name)) this.#before.delete(name);
  }
}

/**
 * The proxy, the hosts with their star links, the VMs with their attachments, the fast paths
 * and the application edges, as cytoscape elements.
 *
 * @param {OverlayModel} model
 * @param {Placement} placed
 * @param {{ rates: StarRates, now: number }} star
 * @returns {GraphElement[]}
 */
export function graphElements(model, placed, star) {
  return [
    { group: "nodes", data: { id: "proxy", label: "proxy" }, classes: "proxy" },
    ...hostElements(model, star),
    ...vmElements(model),
    ...fastPathElements(model, placed),
    ...appElements(model, placed),
  ];
}

/**
 * @param {OverlayModel} model
 * @param {{ rates: StarRates, now: number }} star
 * @returns {GraphElement[]}
 */
function hostElements({ hosts, hostNames, vmsByHost }, { rates, now }) {
  /** @type {GraphElement[]} */
  const elements = [];
  for (const name of hostNames) {
    const h = /** @type {HostModel} */ (hosts.get(name));
    const nVms = (vmsByHost.get(name) ?? []).length;
    let sub = `${nVms} VM${nVms === 1 ? "" : "s"}`;
    if (h.online && h.stats?.rttMs !== null && h.stats?.rttMs !== undefined) {
      sub += ` · rtt ${h.stats.rttMs.toFixed(1)} ms`;
    }
    if (!h.online) sub = "offline";
    elements.push({
      group: "nodes",
      data: { id: `host:${name}`, host: name, label: `${name}\n${sub}`, online: h.online },
      classes: h.online ? "host" : "host offline",
    });
    if (h.online && h.stats) {
      const label = rates.label(name, h.stats.frameBytes + h.stats.rxBytes, now);
      elements.push({
        group: "edges",
        data: { id: `star:${name}`, source: "proxy", target: `host:${name}`, label },
        classes: "star",
      });
    }
  }
  rates.keepOnly((name) => hosts.get(name)?.online === true);
  return elements;
}

/**
 * @param {OverlayModel} model
 * @returns {GraphElement[]}
 */
function vmElements({ vmHost }) {
  /** @type {GraphElement[]} */
  const elements = [];
  for (const [mac, host] of vmHost) {
    const parent = host === LAN_HOST ? "proxy" : `host:${host}`;
    elements.push({
      group: "nodes",
      data: { id: `vm:${mac}`, mac, host, label: mac },
      classes: host === null ? "vm unknown" : "vm",
    });
    if (host !== null) {
      elements.push({
        group: "edges",
        data: { id: `attach:${mac}`, source: parent, target: `vm:${mac}` },
        classes: "attach",
      });
    }
  }
  return elements;
}

/**
 * @param {OverlayModel} model
 * @param {Placement} placed
 * @returns {GraphElement[]}
 */
function fastPathElements({ links }, { pos, columnOf }) {
  const x = (/** @type {string} */ id) => /** @type {Point} */ (pos.get(id)).x;
  const column = (/** @type {string} */ h) => /** @type {number} */ (columnOf.get(h));
  return links.fastPaths.map((f) => {
    const [a, b] = [...f.hosts].sort((p, q) => column(p) - column(q));
    return {
      group: "edges",
      data: {
        id: `fast:${f.hosts[0]}|${f.hosts[1]}`,
        source: `host:${a}`,
        target: `host:${b}`,
        phase: f.phase,
        since: f.since,
        label: f.phase,
        bend: bend(x(`host:${a}`), x(`host:${b}`), true),
      },
      classes: `fast ${f.phase}`,
    };
  });
}

/**
 * @param {OverlayModel} model
 * @param {Placement} placed
 * @returns {GraphElement[]}
 */
function appElements({ topo }, { pos }) {
  const x = (/** @type {string} */ mac) => /** @type {Point} */ (pos.get(`vm:${mac}`)).x;
  return topo.graph.edges.map((e) => {
    const [a, b] = [e.a, e.b].sort((p, q) => x(p) - x(q));
    return {
      group: "edges",
      data: {
        id: `app:${e.a}|${e.b}`,
        source: `vm:${a}`,
        target: `vm:${b}`,
        weight: e.weight,
        bytesPerSec: e.bytesPerSec,
        label: rate(e.bytesPerSec),
        bend: bend(x(a), x(b), false),
      },
      classes: "app",
    };
  });
}
