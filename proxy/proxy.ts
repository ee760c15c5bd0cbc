/**
 * Proxy mode (`agent --proxy`): the hub of the star. It admits hosts, bridges the overlay to
 * the user's LAN through its own device, learns where every MAC lives and floods what it
 * cannot place, over the star only.
 *
 *     host links ──Link.run──> Switch(proxy) ──> the owning host's link | flood to all others
 *     LAN device ──pumpDevice─┘                 └─> LAN device
 *
 * Assembled in a few steps from named subsystems, each built from the one validated config:
 *
 *     bootstrap.ts      PKI, join token, the host book (host_book.ts) from the state directory
 *     core.ts           switch, hosts, events, VTTIF (vttif_service.ts), adaptation
 *                       (adapt/loop.ts), MAC moves (mac_authority.ts, mac_events.ts)
 *     operator.ts       the operator's saved rules and settings, put back and kept
 *     cert_renewal.ts   hosts' certificates renewed while they run
 *     placement_parts.ts   the underlay, VM placement advice, migrations through the hook
 *     star.ts           the join listener: acceptor limits -> host_session.ts per host
 *     control_api.ts    the HTTP API (api.ts), TLS off loopback; revocation.ts behind it
 *
 * @module
 */

import { type Clock, systemClock } from "../agent/clock.ts";
import type { Config } from "../agent/config/schema.ts";
import { isLoopback } from "../agent/config/types.ts";
import type { Device } from "../agent/device/device.ts";
import { pumpDevice } from "../agent/device/pump.ts";
import type { JoinToken } from "../agent/join/token.ts";
import type { Link } from "../agent/link/link.ts";
import { tlsTransport, type Transport } from "../agent/link/transport.ts";
import { logger } from "../agent/log.ts";
import { DEVICE_PORT } from "../agent/switch/port_name.ts";
import type { Switch } from "../agent/switch/switch.ts";
import { VERSION } from "../agent/version.ts";
import type { AdaptLoop } from "../adapt/loop.ts";
import { adaptSettingsOf } from "../adapt/settings.ts";
import type { ApiContext } from "./api_context.ts";
import { loadProxyState, type ProxyState } from "./bootstrap.ts";
import { CertRenewal } from "./cert_renewal.ts";
import {
  apiCertificateNames,
  type ControlApi,
  DEFAULT_API,
  serveControlApi,
} from "./control_api.ts";
import { buildProxyCore } from "./core.ts";
import type { EventHub } from "./events.ts";
import { keepOperatorDecisions } from "./operator.ts";
import { revokeHost } from "./revocation.ts";
import { openStar, type Star } from "./star.ts";
import type { HostRegistry } from "./host_registry.ts";
import type { DiscoveryCount } from "./host_session.ts";
import { buildPlacement, type PlacementParts } from "./placement_parts.ts";
import type { VttifService } from "./vttif_service.ts";

export { DEFAULT_PROXY_PORT } from "./star.ts";

/** What a running proxy exposes. */
export interface ProxyHandle {
  readonly switch: Switch;
  /** The LAN device, if attached. */
  readonly device: Device | null;
  /** The address hosts join (with the real port when 0 was asked for). */
  readonly address: { hostname: string; port: number };
  readonly token: JoinToken;
  /** When the join token stops admitting new hosts (ms since epoch), or null: never. */
  tokenExpiresAt(): number | null;
  /** The CA certificate (PEM) hosts trust. */
  readonly caPem: string;
  /** Connected hosts by name. */
  hosts(): ReadonlyMap<string, Link>;
  /** Connections refused or dropped before admission, by reason. */
  readonly refusals: Record<string, number>;
  /** CA discoveries answered (hosts learning the CA before they join). */
  readonly discoveries: Readonly<DiscoveryCount>;
  /** Traffic reports and report entries refused or clamped, by reason. */
  readonly reportRefusals: Readonly<Record<string, number>>;
  /** Topology inference. */
  readonly vttif: VttifService;
  /** The adaptation loop. */
  readonly adapt: AdaptLoop;
  /** The underlay, VM placement and the migrations carried out. */
  readonly placement: PlacementParts;
  /** The event stream. */
  readonly events: EventHub;
  /** Where the control API listens. */
  readonly apiAddress: { hostname: string; port: number };
  /** Takes on the adaptation settings of a re-read configuration (SIGHUP), and keeps them. */
  reconfigure(next: Config): Promise<void>;
  stop(): Promise<void>;
  done: Promise<void>;
}

/** Injected edges. */
export interface ProxyDeps {
  /** Opens the LAN device; called only when `--tap` or `--pcap` is set. */
  openDevice?(config: Config): Device;
  /** Where to print the join token once, when it is created. Default: stdout. */
  announceToken?(text: string, path: string): void;
  /** How hosts reach the proxy: TLS unless a test runs on the memory network. */
  transport?: Transport;
  /** Whose time everything waits on: the system's unless a test drives time. */
  clock?: Clock;
}

/**
 * Shows a new join token: on the terminal when there is one; otherwise (a service, a script)
 * only where it is, so that it does not end up in journald or a log collector.
 */
function announceToken(text: string, path: string): void {
  if (Deno.stdout.isTerminal()) {
    console.log(`Join token (also in ${path}, mode 0600):\n${text}`);
  } else {
    logger("proxy").info(
      "Created a join token in {path} (mode 0600); copy it to each host (it is not printed " +
        "without a terminal)",
      { path },
    );
  }
}

/** Starts the proxy; rejects for errors found before serving (state dir, port in use...). */
export async function runProxy(config: Config, deps: ProxyDeps = {}): Promise<ProxyHandle> {
  const state = await loadProxyState(config, deps.announceToken ?? announceToken);
  const clock = deps.clock ?? systemClock;
  const stopper = new AbortController();
  const signal = stopper.signal;
  const tasks: Promise<unknown>[] = [];
  // Nothing of this proxy may outlive a failed start.
  const failed = async (e: unknown): Promise<never> => {
    stopper.abort();
    await Promise.all(tasks);
    throw e;
  };

  const core = buildProxyCore(config, clock);
  const { sw, hosts, events, vttif, adapt } = core;
  const placement = buildPlacement(config, core, clock);
  const persist = await keepOperatorDecisions(config, { ...core, placement }, clock);
  tasks.push(vttif.run(signal, clock), adapt.run(signal));
  tasks.push(CertRenewal.fromConfig(config, { hosts, state, clock }).run(signal));
  tasks.push(...placement.run(signal));
  const device = attachLan(config, { sw, openDevice: deps.openDevice, signal, clock, tasks });

  const transport = deps.transport ?? tlsTransport;
  let star: Star;
  try {
    star = openStar(config, { core, state, transport, clock, placement });
  } catch (e) {
    return await failed(e);
  }
  tasks.push(star.run(signal));

  const api = await serveProxyApi(config, {
    switch: sw,
    hosts: () => hosts.links,
    hostRules: hosts.rules,
    startedAt: clock.now(),
    clock,
    version: VERSION,
    vttif,
    adapt,
    events,
    book: state.book,
    ...frontDoorCounts(star, hosts),
    persist,
    revokeHost: (name) => revokeHost(name, { book: state.book, hosts, events, clock }),
    placement,
  }, { pki: state.pki, signal }).catch(failed);
  tasks.push(api.finished);

  const done = Promise.all(tasks).then(() => device?.close());
  return {
    switch: sw,
    device,
    address: star.listener.addr,
    token: state.token,
    tokenExpiresAt: () => state.tokenExpiresAt,
    caPem: state.pki.caPem,
    hosts: () => hosts.links,
    refusals: star.acceptor.refusals,
    discoveries: star.discoveries,
    reportRefusals: star.reports.refused,
    vttif,
    adapt,
    placement,
    events,
    get apiAddress() {
      return api.address();
    },
    reconfigure: async (next) => {
      adapt.settings = { ...adaptSettingsOf(next), keepMargin: adapt.settings.keepMargin };
      adapt.reconcile(clock.now());
      await persist();
    },
    stop: async () => {
      stopper.abort();
      await done;
    },
    done,
  };
}

/**
 * What the API shows of the join listener: reports refused, connections refused, CA
 * discoveries, and hosts' `listening` messages not acted on.
 */
function frontDoorCounts(star: Star, hosts: Pick<HostRegistry, "reach">) {
  return {
    reports: star.reports,
    connectionRefusals: star.acceptor.refusals,
    discoveries: star.discoveries,
    reachabilityRefusals: hosts.reach?.refused,
  };
}

/** The LAN side, when there is one (`--tap`/`--pcap`); said at start either way. */
function attachLan(
  config: Config,
  parts: {
    sw: Switch;
    openDevice?: (config: Config) => Device;
    signal: AbortSignal;
    clock: Clock;
    tasks: Promise<unknown>[];
  },
): Device | null {
  const log = logger("proxy");
  if (!(config.tap || config.pcap) || !parts.openDevice) {
    log.info(
      "Not bridging the overlay to any LAN (no --tap or --pcap): the proxy only relays between hosts",
    );
    return null;
  }
  const dev = parts.openDevice(config);
  parts.sw.attach({ name: DEVICE_PORT, kind: "device", send: (p) => dev.write(p) });
  parts.tasks.push(pumpDevice(dev, parts.sw, { signal: parts.signal, clock: parts.clock }));
  log.info("Bridging the overlay to the LAN through {device}{bridge}", {
    device: config.pcap ? `captured interface ${config.pcap}` : `TAP ${dev.name}`,
    bridge: config.bridge ? ` on bridge ${config.bridge}` : "",
  });
  return dev;
}

/**
 * The control API: on loopback in clear; off loopback over TLS with a certificate from the
 * proxy's CA for a key made at each start (valid a year: the server cannot change certificates
 * while it runs).
 */
async function serveProxyApi(
  config: Config,
  ctx: ApiContext,
  parts: { pki: ProxyState["pki"]; signal: AbortSignal },
): Promise<ControlApi> {
  const at = config.api ?? DEFAULT_API;
  const tls = isLoopback(at.hostname)
    ? null
    : parts.pki.issueServerIdentity(apiCertificateNames(at.hostname), 365 * 86_400_000);
  return await serveControlApi(config, ctx, parts.signal, tls);
}
