/**
 * A host's own status endpoint (`--api ADDR:PORT` on a host; off unless asked for): the
 * uplink, fast paths, switch counters, drops and rules, as JSON on `GET /api/status`, and the
 * same numbers as Prometheus text on `GET /metrics`. Like the proxy's API it needs the token
 * in the host's `state-dir/api.token`, also on loopback; off loopback it speaks TLS only.
 *
 *     request ──ApiGuard (token, Host, Origin)──> /api/status | /metrics
 *
 * @module
 */

import type { Device } from "./device/device.ts";
import { type Address, formatAddress, isLoopback } from "./config/types.ts";
import { ApiGuard } from "./api_guard.ts";
import type { Clock } from "./clock.ts";
import { explainListenError } from "./listen_error.ts";
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

/**
 * A host's status API: on loopback at once; off loopback only over TLS, with the host's own
 * certificate from the proxy's CA (so from its first join on, and served anew when the
 * certificate is renewed). Every request needs the token in the host's state-dir/api.token,
 * with the same rules as the proxy's API (agent/api_guard.ts).
 */
export class HostApi {
  readonly #view: HostView;
  readonly #want: Address;
  readonly #guard: ApiGuard;
  readonly #signal: AbortSignal;
  readonly #clock: Clock;
  #server: Deno.HttpServer | null = null;
  #addr: Address | null = null;
  #done!: () => void;
  /** Settles once the server has stopped after `signal` aborted. */
  readonly finished = new Promise<void>((r) => this.#done = r);

  constructor(
    view: HostView,
    address: Address,
    options: { token: string; signal: AbortSignal; clock: Clock },
  ) {
    this.#view = view;
    this.#want = address;
    this.#guard = new ApiGuard(options.token);
    this.#signal = options.signal;
    this.#clock = options.clock;
    options.signal.addEventListener("abort", () => {
      const s = this.#server;
      (s ? s.finished : Promise.resolve()).then(() => this.#done());
    }, { once: true });
  }

  /** Whether it may serve without TLS: only on loopback. */
  get plain(): boolean {
    return isLoopback(this.#want.hostname);
  }

  /** Where it listens, once serving. */
  get address(): Address | null {
    return this.#addr;
  }

  /**
   * Serves, in clear (loopback only) or over TLS with `tls`; a running server is replaced
   * (a renewed certificate), on the same port.
   */
  async serve(tls: { certPem: string; keyPem: string } | null): Promise<void> {
    if (tls === null && !this.plain) {
      throw new Error(
        `Cannot serve the host API on ${formatAddress(this.#want)} in clear: off loopback it ` +
          "speaks TLS with the host's certificate, from its first join on",
      );
    }
    if (this.#signal.aborted) return;
    const port = this.#addr?.port ?? this.#want.port;
    if (this.#server) await this.#server.shutdown();
    const want = { hostname: this.#want.hostname, port };
    try {
      this.#server = Deno.serve({
        hostname: want.hostname,
        port: want.port,
        signal: this.#signal,
        onListen: (a) => {
          this.#addr = { hostname: a.hostname, port: a.port };
          this.#guard.listensOn(a.hostname, a.port);
        },
        ...(tls ? { cert: tls.certPem, key: tls.keyPem } : {}),
      }, (req) => this.#guard.check(req, this.#clock.now()) ?? respond(this.#view, req));
    } catch (e) {
      throw explainListenError(e, want, "api");
    }
  }
}

/** Answers an authorised request. */
function respond(h: HostView, req: Request): Response {
  const path = new URL(req.url).pathname;
  if (req.method === "GET" && path === "/api/status") return Response.json(hostStatus(h));
  if (req.method === "GET" && path === "/metrics") {
    return new Response(metrics(h), {
      headers: { "content-type": "text/plain; version=0.0.4" },
    });
  }
  return Response.json({ error: `Cannot find ${path}: see /api/status and /metrics` }, {
    status: 404,
  });
}
