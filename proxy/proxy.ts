/**
 * Proxy mode (`agent --proxy`): the hub of the star. It admits hosts, bridges the overlay to
 * the user's LAN through its own device, learns where every MAC lives and floods what it
 * cannot place, over the star only.
 *
 *     host links ──Link.run──> Switch(proxy) ──> the owning host's link | flood to all others
 *     LAN device ──pumpDevice─┘                 └─> LAN device
 *
 * Built from named subsystems, each from the one validated config:
 *
 *     bootstrap.ts      PKI, join token, the host book (host_book.ts) from the state directory
 *     ../agent/link/acceptor.ts  the front door: handshake limits, refusals counted
 *     host_session.ts   admission -> a host's star link -> its control messages
 *     host_registry.ts  connected hosts, their fast-path addresses and operator rules
 *     mac_events.ts     moves and refusals -> events, the old host, the adaptation
 *     vttif_service.ts  inference; adapt/loop.ts the fast paths
 *     control_api.ts    the HTTP API (api.ts)
 *
 * @module
 */

import { type Clock, systemClock } from "../agent/clock.ts";
import type { Config } from "../agent/config/schema.ts";
import { formatAddress, isLoopback } from "../agent/config/types.ts";
import type { Device } from "../agent/device/device.ts";
import { pumpDevice } from "../agent/device/pump.ts";
import type { JoinToken } from "../agent/join/token.ts";
import type { Link } from "../agent/link/link.ts";
import { type Listener, tlsTransport, type Transport } from "../agent/link/transport.ts";
import { logger } from "../agent/log.ts";
import { DEVICE_PORT } from "../agent/switch/port_name.ts";
import { Switch } from "../agent/switch/switch.ts";
import { MAX_COUNTED_PAIRS } from "../agent/traffic/counter.ts";
import { VERSION } from "../agent/version.ts";
import { explainListenError } from "../agent/listen_error.ts";
import { AdaptLoop } from "../adapt/loop.ts";
import { adaptSettingsOf } from "../adapt/settings.ts";
import { Acceptor } from "../agent/link/acceptor.ts";
import { loadProxyState } from "./bootstrap.ts";
import { apiCertificateNames, DEFAULT_API, serveControlApi } from "./control_api.ts";
import { EventHub } from "./events.ts";
import { HostRegistry } from "./host_registry.ts";
import { serveHost, type SessionContext } from "./host_session.ts";
import { followMacs } from "./mac_events.ts";
import { OperatorStore } from "./operator_state.ts";
import { addProxyRule, hostRuleKey, operatorState } from "./api.ts";
import { MacAuthority } from "./mac_authority.ts";
import { ReportGate } from "./report_gate.ts";
import { LogLimit } from "../agent/log_limit.ts";
import { vmHosts } from "./vm_hosts.ts";
import { VttifService } from "./vttif_service.ts";
import { CertRenewal } from "./cert_renewal.ts";

/** Default port hosts join on. */
export const DEFAULT_PROXY_PORT = 7800;

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
  /** Traffic reports and report entries refused or clamped, by reason. */
  readonly reportRefusals: Readonly<Record<string, number>>;
  /** Topology inference. */
  readonly vttif: VttifService;
  /** The adaptation loop. */
  readonly adapt: AdaptLoop;
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
  const log = logger("proxy");
  const state = await loadProxyState(
    config,
    deps.announceToken ?? announceToken,
  );
  const stopper = new AbortController();
  const signal = stopper.signal;
  const tasks: Promise<unknown>[] = [];
  const clock = deps.clock ?? systemClock;
  const transport = deps.transport ?? tlsTransport;

  const sw = new Switch({
    role: "proxy",
    maxMacs: config.maxMacs,
    maxMacsPerPort: config.maxMacsPerHost,
    macAgeMs: config.macAge,
    moveQuietMs: config.moveQuiet,
    neighbourSuppression: config.neighbourSuppression,
  });
  const hosts = new HostRegistry();
  const events = new EventHub();

  // VTTIF counts what crosses the proxy and merges the hosts' reports.
  const vttif = new VttifService({
    updateIntervalMs: config.updateInterval,
    smoothingMs: config.smoothing,
    threshold: config.threshold,
    hysteresisMs: config.hysteresis,
    maxVms: config.maxVms,
    maxPairs: MAX_COUNTED_PAIRS,
  });
  sw.observer = vttif.local;
  vttif.onChange((e) => events.emit({ ...e, type: "topology", at: e.detectedAt }));

  // Adaptation: fast paths where the topology asks for them (adapt/).
  const adapt = new AdaptLoop(
    {
      hosts: () => hosts.links,
      listenAddress: (h) => hosts.listenAddress(h),
      keyOf: (h) => hosts.identityOf(h)?.key ?? null,
      vmHosts: () => vmHosts(sw.macs, clock.now()),
      topology: () => vttif.vttif.current().graph,
    },
    adaptSettingsOf(config),
    // Long enough for VTTIF to see the traffic again: a few reports, smoothing, hysteresis.
    { warmupMs: 3 * config.updateInterval + config.smoothing + config.hysteresis, clock },
  );
  vttif.onChange((e) => adapt.onTopologyChange(e.detectedAt));
  adapt.onEvent = (e) => events.emit({ ...e, at: clock.now() });
  followMacs(sw, { events, adapt, hosts });
  // What the operator changed at run time survives restarts.
  const operator = await OperatorStore.load(config.stateDir);
  const persist = () =>
    operator.save(operatorState({ switch: sw, hostRules: hosts.rules, adapt }), clock.now());
  if (operator.saved) {
    const saved = operator.saved;
    for (const r of saved.proxyRules) addProxyRule(sw, r);
    for (const [host, rules] of Object.entries(saved.hostRules)) {
      hosts.rules.set(host, new Map(rules.map((r) => [hostRuleKey(r.src, r.dst), r])));
    }
    adapt.settings = { ...adapt.settings, ...saved.adapt };
    log.info(
      "Restored the operator's {rules} rules and adaptation settings (saved {at}) from {path}; " +
        "delete it to start from the configuration",
      {
        rules: saved.proxyRules.length +
          Object.values(saved.hostRules).reduce((n, l) => n + l.length, 0),
        at: new Date(saved.savedAt).toISOString(),
        path: operator.path,
      },
    );
  }
  // A VM's MAC moves between hosts only on the old host's word (or its departure).
  const macs = new MacAuthority({
    ask: (host, mac) => hosts.links.get(host)?.sendControl({ type: "mac-check", mac }) ?? false,
    relocate: (mac, to, now) => sw.relocate(mac, to, now),
    refused: (mac, claimedBy, heldBy, now) => {
      sw.releaseHeld(mac);
      sw.drops.spoofed++;
      sw.listener?.onMacRefused?.(mac, claimedBy, heldBy, now);
    },
  });
  sw.movePolicy = macs;
  tasks.push(vttif.run(signal, clock), adapt.run(signal));
  // Certificates renewed while hosts run, before they expire.
  const renewal = new CertRenewal({
    hosts,
    book: state.book,
    issue: (name, spki) =>
      state.pki.issueHostCertificate(name, spki, {
        lifetimeMs: config.certLifetime,
        now: clock.now(),
      }),
    lifetimeMs: config.certLifetime,
    clock,
  });
  tasks.push(renewal.run(signal));

  // The LAN side, when there is one; said at start either way.
  let device: Device | null = null;
  if ((config.tap || config.pcap) && deps.openDevice) {
    const dev = device = deps.openDevice(config);
    sw.attach({ name: DEVICE_PORT, kind: "device", send: (p) => dev.write(p) });
    tasks.push(pumpDevice(dev, sw, { signal, clock }));
    log.info("Bridging the overlay to the LAN through {device}{bridge}", {
      device: config.pcap ? `captured interface ${config.pcap}` : `TAP ${dev.name}`,
      bridge: config.bridge ? ` on bridge ${config.bridge}` : "",
    });
  } else {
    log.info(
      "Not bridging the overlay to any LAN (no --tap or --pcap): the proxy only relays between hosts",
    );
  }

  // The star: hosts join over TLS, within the acceptor's limits.
  const listenAddr = config.listen ?? { hostname: "0.0.0.0", port: DEFAULT_PROXY_PORT };
  let listener: Listener;
  try {
    listener = transport.listen(listenAddr, {
      certPem: state.pki.proxyCertPem,
      keyPem: state.pki.proxyKeyPem,
    });
  } catch (e) {
    stopper.abort();
    await Promise.all(tasks);
    throw explainListenError(e, listenAddr, "listen");
  }
  const bound = listener.addr;
  log.info("Proxy listening on {addr}; token id {id}", {
    addr: formatAddress({ hostname: bound.hostname, port: bound.port }),
    id: state.token.id,
  });
  const acceptor = new Acceptor(config);
  const reports = new ReportGate(config.updateInterval);
  const refusalLog = new LogLimit(60_000);
  const session: SessionContext = {
    sw,
    hosts,
    vttif,
    adapt,
    events,
    acceptor,
    macs,
    refusalLog,
    reports,
    admission: {
      token: state.token,
      caPem: state.pki.caPem,
      issueHostCertificate: (n, k) =>
        state.pki.issueHostCertificate(n, k, { lifetimeMs: config.certLifetime, now: clock.now() }),
      tokenExpiresAt: state.tokenExpiresAt,
      book: state.book,
      settings: {
        updateIntervalMs: config.updateInterval,
        keepaliveMs: config.keepalive,
        deadAfterMs: config.deadAfter,
      },
      timeoutMs: config.handshakeTimeout,
      clock,
    },
    link: {
      queueBytes: config.queueBytes,
      keepaliveMs: config.keepalive,
      deadAfterMs: config.deadAfter,
      clock,
    },
    clock,
    signal,
  };
  tasks.push(acceptor.run(listener, {
    sourceOf: (conn) => conn.remoteAddr.hostname,
    onRefused: (source, why) => {
      if (refusalLog.shouldLog(`${why}|${source}`, clock.now())) {
        log.warn("Refused a connection from {source}: {why} (more for 60 s: counted only)", {
          source,
          why,
        });
      }
    },
    serve: (conn, handshakeDone) => serveHost(conn, session, handshakeDone),
    onAcceptError: (e) => log.error("Cannot accept a connection: {error}", { error: String(e) }),
    onServeError: (e) => log.error("Host connection failed: {error}", { error: String(e) }),
    clock,
  }, signal));
  signal.addEventListener("abort", () => {
    try {
      listener.close();
    } catch { /* closed */ }
    for (const link of hosts.links.values()) link.close("proxy shutting down");
  }, { once: true });

  let api;
  try {
    const apiAt = config.api ?? DEFAULT_API;
    // Off loopback, the API speaks TLS with a certificate from the proxy's CA, for a key made
    // at each start (valid a year: the server cannot change certificates while it runs).
    const apiTls = isLoopback(apiAt.hostname) ? null : await state.pki.issueServerIdentity(
      apiCertificateNames(apiAt.hostname),
      365 * 86_400_000,
    );
    api = await serveControlApi(
      config,
      {
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
        reports,
        persist,
        connectionRefusals: acceptor.refusals,
        revokeHost: async (name) => {
          const r = await state.book.revoke(name, clock.now());
          if (r) {
            // Its link goes now; its key can never join again, under any name; and every host
            // refuses fast paths with it.
            hosts.links.get(name)?.close("revoked by the operator");
            const keys = state.book.revoked().map((k) => k.key);
            for (const link of hosts.links.values()) {
              link.sendControl({ type: "keys-revoked", keys });
            }
            log.warn("Host {host} revoked: key {key} is denied from now on", {
              host: name,
              key: r.key,
            });
            events.emit({
              type: "host",
              at: clock.now(),
              host: name,
              state: "revoked",
              key: r.key,
            });
          }
          return r;
        },
      },
      signal,
      apiTls,
    );
  } catch (e) {
    // Nothing of this proxy may outlive the failed start.
    stopper.abort();
    await Promise.all(tasks);
    throw e;
  }
  tasks.push(api.finished);

  const done = Promise.all(tasks).then(() => device?.close());
  return {
    switch: sw,
    device,
    address: { hostname: bound.hostname, port: bound.port },
    token: state.token,
    tokenExpiresAt: () => state.tokenExpiresAt,
    caPem: state.pki.caPem,
    hosts: () => hosts.links,
    refusals: acceptor.refusals,
    reportRefusals: reports.refused,
    vttif,
    adapt,
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
