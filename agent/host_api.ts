/**
 * A host's own status endpoint (`--api ADDR:PORT` on a host; off unless asked for): the
 * uplink, fast paths, switch counters, drops and rules, as JSON on `GET /api/status`, and the
 * same numbers as Prometheus text on `GET /metrics`. Loopback only: a host has no token.
 *
 * @module
 */

import type { Device } from "./device/device.ts";
import type { Address } from "./config/types.ts";
import type { FastPathManager } from "./fastpath/manager.ts";
import type { Link } from "./link/link.ts";
import type { Switch } from "./switch/switch.ts";
import { formatMac } from "./switch/ethernet.ts";

/** What the endpoint reports on. */
export interface HostView {
  name: string;
  switch: Switch;
  uplink(): Link | null;
  fastPaths: FastPathManager;
  /** The VMs' device; its `waitMode` is shown as `deviceWait`. */
  device: Device;
}

/** The host's status as JSON-ready data. */
export function hostStatus(h: HostView) {
  const up = h.uplink();
  return {
    role: "host",
    name: h.name,
    memory: Deno.memoryUsage(),
    deviceWait: h.device.waitMode,
    uplink: up ? { up: true, ...up.stats() } : { up: false },
    fastPaths: h.fastPaths.peers().map((peer) => ({ peer, ...h.fastPaths.link(peer)!.stats() })),
    fastPathRefusals: h.fastPaths.refusals,
    ports: Object.fromEntries(h.switch.counters()),
    drops: h.switch.drops,
    vms: [...h.switch.macs.entries()].filter(([, e]) => e.port === "device").map(([m]) =>
      formatMac(m)
    ),
    rules: h.switch.rules.list().map((r) => ({
      id: r.id,
      target: r.target,
      owner: r.owner,
      frames: r.frames,
      bytes: r.bytes,
    })),
  };
}

function metrics(h: HostView): string {
  const lines: string[] = [];
  const fam = (name: string, type: string, help: string, rows: [string, number][]) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, v] of rows) lines.push(`${name}${labels} ${v}`);
  };
  const ports = [...h.switch.counters()];
  fam(
    "vnet_port_rx_frames_total",
    "counter",
    "Frames received per port.",
    ports.map(([p, c]) => [`{port="${p}"}`, c.rxFrames]),
  );
  fam(
    "vnet_port_tx_frames_total",
    "counter",
    "Frames sent per port.",
    ports.map(([p, c]) => [`{port="${p}"}`, c.txFrames]),
  );
  fam(
    "vnet_port_tx_drops_total",
    "counter",
    "Frames a port refused.",
    ports.map(([p, c]) => [`{port="${p}"}`, c.txDrops]),
  );
  fam(
    "vnet_switch_drops_total",
    "counter",
    "Frames the switch dropped, by reason.",
    Object.entries(h.switch.drops).map(([r, n]) => [`{reason="${r}"}`, n]),
  );
  fam("vnet_fast_paths", "gauge", "Fast paths up.", [["", h.fastPaths.peers().length]]);
  return lines.join("\n") + "\n";
}

/** Serves the endpoint until `signal` aborts. */
export function serveHostApi(h: HostView, address: Address, signal: AbortSignal): Deno.HttpServer {
  return Deno.serve(
    { hostname: address.hostname, port: address.port, signal, onListen: () => {} },
    (req) => {
      const path = new URL(req.url).pathname;
      if (req.method === "GET" && path === "/api/status") {
        return Response.json(hostStatus(h));
      }
      if (req.method === "GET" && path === "/metrics") {
        return new Response(metrics(h), {
          headers: { "content-type": "text/plain; version=0.0.4" },
        });
      }
      return Response.json({ error: `Cannot find ${path}: see /api/status and /metrics` }, {
        status: 404,
      });
    },
  );
}
