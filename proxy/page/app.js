/**
 * The live topology page: the proxy, its hosts and their VMs as a graph, the star backbone and
 * the fast paths between hosts, and the application topology VTTIF inferred between VMs; a
 * panel with the topology class and an event timeline fed by the proxy's event stream.
 *
 *     EventSource(/api/events?stream) -> timeline, and a refresh
 *     refresh (each event, and every few s): /api/links, /api/vms, /api/topology, /api/adapt
 *       -> model (nodes, edges, positions) -> cytoscape (diffed, so zoom and pan survive)
 *
 * Layout (computed here, not by a force layout, so nothing jumps between refreshes): hosts in
 * one row sorted by name, their VMs in rows below them, the proxy above. Fast paths are arcs
 * above the host row and application edges arcs below the VM rows; an arc's height grows with
 * the distance it spans, so arcs between the same columns never share a path.
 *
 * For tests and scripts: `window.vnetGraph` is the cytoscape instance (node ids `proxy`,
 * `host:<name>`, `vm:<mac>`; edge classes `star`, `fast`, `app`, `attach`), and `<body>`
 * carries counts in data attributes (hosts, hostsOnline, vms, starEdges, fastPaths, fastPathsUp,
 * appEdges, topology, events, refreshes, ready).
 */
"use strict";

(() => {
  const REFRESH_MS = 3000;
  /** Coalesces bursts of events (a topology change brings several) into one refresh. */
  const EVENT_REFRESH_DELAY_MS = 150;
  const MAX_TIMELINE = 300;
  const EVENT_TYPES = ["host", "link", "topology", "reaction", "vm"];
  const LAN = "proxy (LAN)"; // LAN_HOST in proxy/vm_hosts.ts

  const COLUMN = 190;
  const VM_W = 132;
  const VM_ROW = 46;
  const VMS_PER_ROW = 3;
  const HOST_Y = 0;
  const FIRST_VM_Y = 78;
  const ARC = 34;

  const colors = {
    ink: "#1f2933",
    muted: "#616e7c",
    star: "#8a94a0",
    up: "#14935c",
    connecting: "#d99a00",
    draining: "#d0453a",
    app: "#8e3fb0",
  };

  const $ = (id) => document.getElementById(id);
  const body = document.body;

  // ---------------------------------------------------------------- formatting

  // formatRate in agent/rate.ts, repeated for the browser.
  function rate(bytesPerSec) {
    if (!Number.isFinite(bytesPerSec) || bytesPerSec <= 0) return "0 B/s";
    const units = ["B/s", "kB/s", "MB/s", "GB/s"];
    let v = bytesPerSec;
    let i = 0;
    while (v >= 1000 && i < units.length - 1) {
      v /= 1000;
      i++;
    }
    return `${v >= 100 || i === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
  }

  function clock(ms) {
    const d = new Date(ms);
    const p = (n, w = 2) => String(n).padStart(w, "0");
    return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${
      p(d.getMilliseconds(), 3)
    }`;
  }

  function ago(ms) {
    const s = Math.max(0, (Date.now() - ms) / 1000);
    if (s < 60) return `${s.toFixed(0)} s ago`;
    if (s < 3600) return `${(s / 60).toFixed(0)} min ago`;
    return `${(s / 3600).toFixed(1)} h ago`;
  }

  const byName = new Intl.Collator(undefined, { numeric: true }).compare;

  function pairHosts(pair) {
    return Array.isArray(pair) ? pair : String(pair).split("|");
  }

  /** One line for the timeline. */
  function describe(e) {
    switch (e.type) {
      case "host":
        return `host ${e.host} ${e.state}` + (e.from ? ` from ${e.from}` : "") +
          (e.reason ? `: ${e.reason}` : "");
      case "link": {
        const [a, b] = pairHosts(e.pair);
        return `fast path ${a} ⇄ ${b} ${e.phase}` + (e.reason ? `: ${e.reason}` : "");
      }
      case "topology": {
        const added = Array.isArray(e.added) ? e.added.length : 0;
        const removed = Array.isArray(e.removed) ? e.removed.length : 0;
        return `topology ${e.from} → ${e.to} (+${added} −${removed} edges)` +
          (e.toSummary ? `: ${e.toSummary}` : "");
      }
      case "reaction":
        return e.kind === "migration"
          ? `VM ${e.mac} moved: forwarding updated everywhere in ${e.ms} ms`
          : `overlay adapted in ${e.ms} ms: ${e.links} fast paths, rules active`;
      case "vm":
        if (e.change === "moved") return `VM ${e.mac} moved ${e.from} → ${e.to}`;
        if (e.change === "refused") {
          return `VM ${e.mac} refused from ${e.claimedBy}: active behind ${e.heldBy}`;
        }
        return `VM ${e.mac} ${e.change ?? "seen"} at ${e.port}`;
      default:
        return `${e.type} ${JSON.stringify(e)}`;
    }
  }

  // ---------------------------------------------------------------- graph

  const style = [
    {
      selector: "node",
      style: {
        label: "data(label)",
        "font-size": 13,
        color: colors.ink,
        "text-valign": "center",
        "text-halign": "center",
        "text-wrap": "wrap",
        "min-zoomed-font-size": 6,
      },
    },
    {
      selector: "#proxy",
      style: {
        shape: "round-hexagon",
        width: 120,
        height: 56,
        "background-color": "#243b53",
        color: "#fff",
        "font-weight": "bold",
        "font-size": 15,
      },
    },
    {
      selector: "node.host",
      style: {
        shape: "round-rectangle",
        width: 150,
        height: 52,
        "background-color": "#e6effc",
        "border-width": 2,
        "border-color": "#3367d6",
        "font-weight": "bold",
        "line-height": 1.3,
      },
    },
    {
      selector: "node.host.offline",
      style: {
        "background-color": "#f1f3f5",
        "border-color": "#9aa5b1",
        "border-style": "dashed",
        color: colors.muted,
      },
    },
    {
      selector: "node.vm",
      style: {
        shape: "round-rectangle",
        width: VM_W - 10,
        height: 26,
        "background-color": "#fff8e6",
        "border-width": 1.5,
        "border-color": "#c99a2e",
        "font-family": "DejaVu Sans Mono, Liberation Mono, monospace",
        "font-size": 11,
      },
    },
    {
      selector: "node.vm.unknown",
      style: {
        "background-color": "#f1f3f5",
        "border-color": "#9aa5b1",
        "border-style": "dashed",
        color: colors.muted,
      },
    },
    {
      selector: "edge",
      style: { "curve-style": "straight", width: 2, "line-color": colors.star },
    },
    {
      selector: "edge.attach",
      style: { width: 1.5, "line-color": "#c3cad3" },
    },
    {
      selector: "edge.star",
      style: {
        width: 2,
        "line-style": "dashed",
        "line-dash-pattern": [7, 5],
        "line-color": colors.star,
        label: "data(label)",
        "font-size": 11,
        color: colors.muted,
        "text-background-color": "#fff",
        "text-background-opacity": 0.9,
        "text-background-padding": 2,
      },
    },
    {
      selector: "edge.fast, edge.app",
      style: {
        "curve-style": "unbundled-bezier",
        "control-point-weights": 0.5,
        "control-point-distances": (ele) => ele.data("bend"),
        label: "data(label)",
        "font-size": 11,
        "text-background-color": "#fff",
        "text-background-opacity": 0.9,
        "text-background-padding": 2,
        "text-background-shape": "round-rectangle",
      },
    },
    {
      selector: "edge.fast",
      style: {
        width: 5,
        "line-color": colors.up,
        color: colors.up,
        "font-weight": "bold",
        "z-index": 2,
      },
    },
    {
      selector: "edge.fast.connecting",
      style: {
        "line-color": colors.connecting,
        color: colors.connecting,
        "line-style": "dashed",
        width: 4,
      },
    },
    {
      selector: "edge.fast.draining",
      style: {
        "line-color": colors.draining,
        color: colors.draining,
        "line-style": "dotted",
        width: 4,
      },
    },
    {
      selector: "edge.app",
      style: {
        width: (ele) => 1.5 + 7 * ele.data("weight"),
        "line-color": colors.app,
        "line-opacity": 0.75,
        color: colors.app,
        "z-index": 1,
      },
    },
  ];

  // `cytoscape` is the global that /vendor/cytoscape.min.js defines (loaded before this file).
  const cy = cytoscape({
    container: $("graph"),
    style,
    layout: { name: "preset" },
    autoungrabify: true,
    boxSelectionEnabled: false,
    minZoom: 0.15,
    maxZoom: 3,
  });
  globalThis.vnetGraph = cy;

  /**
   * Host columns left to right, each VM's row and slot under its host, and a last column
   * without a host for VMs whose location the proxy no longer knows.
   */
  function layout(hostNames, vmsByHost, lanVms, unknownVms) {
    const pos = new Map();
    let x = 0;
    const columnOf = new Map();
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

  /** Bend (px, perpendicular) for an arc from left node `a` to right node `b`. */
  function bend(ax, bx, up) {
    const d = Math.abs(bx - ax) / COLUMN;
    const h = 24 + ARC * Math.max(0, d - 1) + 10 * Math.min(d, 1);
    // For a left-to-right edge cytoscape's positive distance points down the screen.
    return up ? -2 * h : 2 * h;
  }

  let structureKey = "";
  const previousStar = new Map();

  /** Turns the API's answers into the graph and the panel. */
  function render(links, vms, topo, adapt) {
    const now = Date.now();
    const hosts = new Map();
    for (const s of links.star) hosts.set(s.host, { name: s.host, online: true, stats: s });
    const vmsByHost = new Map();
    const lanVms = [];
    const vmHost = new Map();
    for (const v of vms) {
      vmHost.set(v.mac, v.host);
      if (v.host === LAN) {
        lanVms.push(v.mac);
        continue;
      }
      if (!hosts.has(v.host)) hosts.set(v.host, { name: v.host, online: false });
      if (!vmsByHost.has(v.host)) vmsByHost.set(v.host, []);
      vmsByHost.get(v.host).push(v.mac);
    }
    for (const f of links.fastPaths) {
      for (const h of f.hosts) if (!hosts.has(h)) hosts.set(h, { name: h, online: false });
    }
    // VMs VTTIF still remembers but the proxy's MAC table no longer has (their host left, or
    // they went quiet): shown apart, without a host.
    const unknownVms = [];
    for (const mac of topo.graph.vms) {
      if (!vmHost.has(mac)) {
        vmHost.set(mac, null);
        unknownVms.push(mac);
      }
    }
    const hostNames = [...hosts.keys()].sort(byName);
    for (const list of vmsByHost.values()) list.sort();
    const { pos, columnOf } = layout(hostNames, vmsByHost, lanVms, unknownVms);

    const elements = [];
    elements.push({ group: "nodes", data: { id: "proxy", label: "proxy" }, classes: "proxy" });
    for (const name of hostNames) {
      const h = hosts.get(name);
      const nVms = (vmsByHost.get(name) ?? []).length;
      let sub = `${nVms} VM${nVms === 1 ? "" : "s"}`;
      if (h.online && h.stats.rttMs !== null && h.stats.rttMs !== undefined) {
        sub += ` · rtt ${h.stats.rttMs.toFixed(1)} ms`;
      }
      if (!h.online) sub = "offline";
      elements.push({
        group: "nodes",
        data: { id: `host:${name}`, host: name, label: `${name}\n${sub}`, online: h.online },
        classes: h.online ? "host" : "host offline",
      });
      if (h.online) {
        const total = h.stats.frameBytes + h.stats.rxBytes;
        const before = previousStar.get(name);
        let label = "";
        if (before && now - before.at >= 500 && total >= before.total) {
          label = rate((total - before.total) * 1000 / (now - before.at));
        }
        if (!before || now - before.at >= 500) previousStar.set(name, { at: now, total, label });
        else label = before.label;
        elements.push({
          group: "edges",
          data: { id: `star:${name}`, source: "proxy", target: `host:${name}`, label },
          classes: "star",
        });
      }
    }
    for (const name of previousStar.keys()) if (!hosts.get(name)?.online) previousStar.delete(name);
    for (const [mac, host] of vmHost) {
      const parent = host === LAN ? "proxy" : `host:${host}`;
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
    let fastUp = 0;
    for (const f of links.fastPaths) {
      const [a, b] = [...f.hosts].sort((x, y) => columnOf.get(x) - columnOf.get(y));
      if (f.phase === "up") fastUp++;
      elements.push({
        group: "edges",
        data: {
          id: `fast:${f.hosts[0]}|${f.hosts[1]}`,
          source: `host:${a}`,
          target: `host:${b}`,
          phase: f.phase,
          since: f.since,
          label: f.phase,
          bend: bend(pos.get(`host:${a}`).x, pos.get(`host:${b}`).x, true),
        },
        classes: `fast ${f.phase}`,
      });
    }
    for (const e of topo.graph.edges) {
      const [a, b] = [e.a, e.b].sort((x, y) => pos.get(`vm:${x}`).x - pos.get(`vm:${y}`).x);
      elements.push({
        group: "edges",
        data: {
          id: `app:${e.a}|${e.b}`,
          source: `vm:${a}`,
          target: `vm:${b}`,
          weight: e.weight,
          bytesPerSec: e.bytesPerSec,
          label: rate(e.bytesPerSec),
          bend: bend(pos.get(`vm:${a}`).x, pos.get(`vm:${b}`).x, false),
        },
        classes: "app",
      });
    }

    const key = elements.map((el) => el.data.id).sort().join(" ");
    cy.batch(() => {
      const wanted = new Set(elements.map((el) => el.data.id));
      cy.elements().filter((el) => !wanted.has(el.id())).remove();
      for (const el of elements.filter((x) => x.group === "nodes")) upsert(el, pos);
      for (const el of elements.filter((x) => x.group === "edges")) upsert(el, pos);
    });
    if (key !== structureKey) {
      structureKey = key;
      cy.fit(undefined, 40);
    }

    // Panel and data attributes.
    const c = topo.classification;
    $("topology-kind").textContent = c.kind;
    $("topology-summary").textContent = c.summary;
    $("topology-size").textContent = `${c.evidence.vms} / ${c.evidence.edges}`;
    $("topology-degrees").textContent = Object.entries(c.evidence.degrees)
      .map(([deg, n]) => `${n}× ${deg}`).join(", ") || "–";
    $("topology-max").textContent = topo.graph.maxBytesPerSec > 0
      ? rate(topo.graph.maxBytesPerSec)
      : "–";
    const online = hostNames.filter((n) => hosts.get(n).online).length;
    $("overlay-hosts").textContent = `${online} online` +
      (online < hostNames.length ? `, ${hostNames.length - online} offline` : "");
    $("overlay-vms").textContent = String(vmHost.size);
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

    const count = (sel) => String(cy.$(sel).length);
    body.dataset.hosts = count("node.host");
    body.dataset.hostsOnline = count("node.host[?online]");
    body.dataset.vms = count("node.vm");
    body.dataset.starEdges = count("edge.star");
    body.dataset.fastPaths = count("edge.fast");
    body.dataset.fastPathsUp = count("edge.fast.up");
    body.dataset.appEdges = count("edge.app");
    body.dataset.topology = c.kind;
    body.dataset.refreshes = String(Number(body.dataset.refreshes ?? 0) + 1);
    body.dataset.ready = "true";
  }

  function upsert(el, pos) {
    const found = cy.getElementById(el.data.id);
    if (
      found.nonempty() && el.group === "edges" &&
      (found.data("source") !== el.data.source || found.data("target") !== el.data.target)
    ) {
      found.remove(); // endpoints of an edge cannot change in place
    }
    const existing = cy.getElementById(el.data.id);
    if (existing.nonempty()) {
      existing.data(el.data);
      existing.classes(el.classes);
      if (el.group === "nodes") existing.position(pos.get(el.data.id));
    } else {
      cy.add({ ...el, position: el.group === "nodes" ? pos.get(el.data.id) : undefined });
    }
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
          const [links, vms, topo, adapt] = await Promise.all(
            ["/api/links", "/api/vms", "/api/topology", "/api/adapt"].map(getJson),
          );
          render(links, vms, topo, adapt);
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

  globalThis.addEventListener("resize", () => cy.fit(undefined, 40));
  connect();
  refresh();
  setInterval(refresh, REFRESH_MS);
})();
