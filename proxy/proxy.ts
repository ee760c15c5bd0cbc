/**
 * Proxy mode (`agent --proxy`): the hub of the star. It admits hosts, bridges the overlay to
 * the user's LAN through its own device, learns where every MAC lives and floods what it
 * cannot place, over the star only.
 *
 *     host links ──Link.run──> Switch(proxy) ──> the owning host's link | flood to all others
 *     LAN device ──pumpDevice─┘                 └─> LAN device
 *
 * @module
 */

import type { Config } from "../agent/config/schema.ts";
import { formatAddress } from "../agent/config/types.ts";
import type { Device } from "../agent/device/device.ts";
import { pumpDevice } from "../agent/device/pump.ts";
import {
  formatJoinToken,
  JOIN_TOKEN_FILE,
  type JoinToken,
  loadOrCreateJoinToken,
} from "../agent/join/token.ts";
import { Link } from "../agent/link/link.ts";
import { logger } from "../agent/log.ts";
import { tryTcpNoDelay } from "../ffi/socket.ts";
import { Switch } from "../agent/switch/switch.ts";
import { AdmissionRefused, admit } from "./admit.ts";
import { loadOrCreatePki } from "./pki/ca.ts";
import { HostCredentials } from "./host_credentials.ts";
import { VttifService } from "./vttif_service.ts";
import { AdaptLoop } from "../adapt/loop.ts";
import { EventHub } from "./events.ts";
import { adaptSettingsOf } from "../adapt/settings.ts";
import { formatMac, parseMac } from "../agent/switch/ethernet.ts";
import { hostOfPort, hostPort } from "../agent/switch/port_name.ts";
import { vmHosts } from "./vm_hosts.ts";
import { parseHostMessage } from "../agent/control/messages.ts";
import { MAX_COUNTED_PAIRS } from "../agent/traffic/counter.ts";
import { apiHandler, isLoopback } from "./api.ts";
import type { WireRule } from "../agent/control/messages.ts";
import { readSecretFile, writeSecretFile } from "../agent/secret_file.ts";
import { VERSION } from "../agent/version.ts";

/** Default port hosts join on. */
export const DEFAULT_PROXY_PORT = 7800;

/** Default address of the control API: loopback only. */
export const DEFAULT_API = { hostname: "127.0.0.1", port: 7801 };

/** What a running proxy exposes. */
export interface ProxyHandle {
  readonly switch: Switch;
  /** The LAN device, if attached. */
  readonly device: Device | null;
  /** The address hosts join (with the real port when 0 was asked for). */
  readonly address: { hostname: string; port: number };
  readonly token: JoinToken;
  /** The CA certificate (PEM) hosts trust. */
  readonly caPem: string;
  /** Connected hosts by name. */
  hosts(): ReadonlyMap<string, Link>;
  /** Connections refused or dropped before admission, by reason. */
  readonly refusals: Record<string, number>;
  /** Topology inference. */
  readonly vttif: VttifService;
  /** The adaptation loop. */
  readonly adapt: AdaptLoop;
  /** The event stream. */
  readonly events: EventHub;
  /** Where the control API listens. */
  readonly apiAddress: { hostname: string; port: number };
  stop(): Promise<void>;
  done: Promise<void>;
}

/** Injected edges. */
export interface ProxyDeps {
  /** Opens the LAN device; called only when `--tap` or `--pcap` is set. */
  openDevice?(config: Config): Device;
  /** Where to print the join token once, when it is created. Default: stdout. */
  announceToken?(text: string, path: string): void;
}

/**
 * The address a host accepts fast paths on: it advertises `:PORT` when it listens on all its
 * interfaces, and then the address it joined from is the one the proxy knows works.
 */
export function resolveListen(advertised: string, joinedFrom: string): string {
  if (!advertised.startsWith(":")) return advertised;
  return formatAddress({ hostname: joinedFrom, port: Number(advertised.slice(1)) });
}

/** Starts the proxy; rejects for errors found before serving (state dir, port in use...). */
export async function runProxy(config: Config, deps: ProxyDeps = {}): Promise<ProxyHandle> {
  const log = logger("proxy");
  const pki = await loadOrCreatePki(config.stateDir);
  const tokenPath = `${config.stateDir}/${JOIN_TOKEN_FILE}`;
  const existed = await Deno.stat(tokenPath).then(() => true, () => false);
  const token = await loadOrCreateJoinToken(config.stateDir, pki.caHash);
  const credentials = await HostCredentials.load(config.stateDir);
  // The token's age is its file's: a new token is a new file.
  const tokenMadeAt = (await Deno.stat(tokenPath)).mtime?.getTime() ?? Date.now();
  const tokenExpiresAt = config.tokenTtl > 0 ? tokenMadeAt + config.tokenTtl : null;
  if (!existed) {
    const announce = deps.announceToken ??
      ((t: string, p: string) => console.log(`Join token (also in ${p}, mode 0600):\n${t}`));
    announce(formatJoinToken(token), tokenPath);
  }

  const sw = new Switch({
    role: "proxy",
    maxMacs: config.maxMacs,
    macAgeMs: config.macAge,
    moveQuietMs: config.moveQuiet,
  });
  const stopper = new AbortController();
  const signal = stopper.signal;
  const tasks: Promise<unknown>[] = [];

  const vttif = new VttifService({
    updateIntervalMs: config.updateInterval,
    smoothingMs: config.smoothing,
    threshold: config.threshold,
    hysteresisMs: config.hysteresis,
    maxVms: config.maxVms,
    maxPairs: MAX_COUNTED_PAIRS,
  });
  sw.observer = vttif.local;
  tasks.push(vttif.run(signal));

  // Adaptation: fast paths where the topology asks for them (adapt/).
  const listenAddresses = new Map<string, string>();
  const adapt = new AdaptLoop(
    {
      hosts: () => hosts,
      listenAddress: (h) => listenAddresses.get(h) ?? null,
      vmHosts: () => vmHosts(sw.macs, Date.now()),
      topology: () => vttif.vttif.current().graph,
    },
    adaptSettingsOf(config),
    {
      // Long enough for VTTIF to see the traffic again: a few reports, smoothing, hysteresis.
      warmupMs: 3 * config.updateInterval + config.smoothing + config.hysteresis,
    },
  );
  vttif.onChange((e) => adapt.onTopologyChange(e.detectedAt));
  const events = new EventHub();
  // One log line per refused claimant and MAC per 10 s: a spoofer must not flood the log.
  const refusedLogged = new Map<string, number>();
  const refusedClaim = (mac: string, claimedBy: string, heldBy: string, now: number): boolean => {
    const key = `${mac}|${claimedBy}`;
    if (now - (refusedLogged.get(key) ?? -Infinity) < 10_000) return false;
    if (refusedLogged.size > 10_000) refusedLogged.clear();
    refusedLogged.set(key, now);
    log.warn(
      "Refused {mac} from {claimedBy}: it is active behind {heldBy} (spoofing, or a move too soon)",
      {
        mac,
        claimedBy,
        heldBy,
      },
    );
    return true;
  };
  vttif.onChange((e) => events.emit({ ...e, type: "topology", at: e.detectedAt }));
  adapt.onEvent = (e) => events.emit({ ...e, at: Date.now() });
  sw.listener = {
    onMacLearned: (mac, port, now) =>
      events.emit({ type: "vm", at: now, mac: formatMac(mac), port, change: "learned" }),
    onMacMoved: (mac, from, to, now) => {
      // Runs inside Switch.forward: the frame that moved the VM is on its way already.
      const text = formatMac(mac);
      log.info("VM {mac} moved from {from} to {to}", { mac: text, from, to });
      events.emit({ type: "vm", at: now, mac: text, from, to, change: "moved" });
      const oldHost = hostOfPort(from);
      if (oldHost !== null) {
        hosts.get(oldHost)?.sendControl({ type: "mac-moved", mac: text, to: hostOfPort(to) ?? to });
      }
      adapt.onVmMoved(text, now);
    },
    onMacRefused: (mac, claimedBy, heldBy, now) =>
      refusedClaim(formatMac(mac), claimedBy, heldBy, now) && events.emit({
        type: "vm",
        at: now,
        mac: formatMac(mac),
        claimedBy,
        heldBy,
        change: "refused",
      }),
  };
  tasks.push(adapt.run(signal));

  let device: Device | null = null;
  if ((config.tap || config.pcap) && deps.openDevice) {
    device = deps.openDevice(config);
    const dev = device;
    sw.attach({ name: "device", kind: "device", send: (p) => dev.write(p) });
    tasks.push(pumpDevice(dev, sw, { signal }));
  }

  const listenAddr = config.listen ?? { hostname: "0.0.0.0", port: DEFAULT_PROXY_PORT };
  const listener = Deno.listenTls({
    hostname: listenAddr.hostname,
    port: listenAddr.port,
    cert: pki.proxyCertPem,
    key: pki.proxyKeyPem,
  });
  const bound = listener.addr as Deno.NetAddr;
  log.info("Proxy listening on {addr}; token id {id}", {
    addr: formatAddress({ hostname: bound.hostname, port: bound.port }),
    id: token.id,
  });

  const hosts = new Map<string, Link>();
  const refusals: Record<string, number> = {};
  const count = (why: string) => refusals[why] = (refusals[why] ?? 0) + 1;
  let pending = 0;
  const pendingFrom = new Map<string, number>();
  const settings = {
    updateIntervalMs: config.updateInterval,
    keepaliveMs: config.keepalive,
    deadAfterMs: config.deadAfter,
  };

  const serve = async (conn: Deno.TlsConn) => {
    const remote = conn.remoteAddr as Deno.NetAddr;
    const from = formatAddress({ hostname: remote.hostname, port: remote.port });
    // Frames must not wait for ACKs (see ffi/socket.ts).
    const noDelayFailed = tryTcpNoDelay(conn);
    if (noDelayFailed) {
      log.warn("Cannot set TCP_NODELAY for {from}: {error}", { from, error: noDelayFailed });
    }
    let host;
    try {
      host = await admit(conn, {
        token,
        caPem: pki.caPem,
        issueHostCertificate: (n, k) => pki.issueHostCertificate(n, k),
        tokenExpiresAt,
        credentials,
        settings,
        timeoutMs: config.handshakeTimeout,
      });
    } catch (e) {
      const why = e instanceof AdmissionRefused ? "refused" : (e as Error).name;
      count(why);
      log.warn("Refused connection from {from}: {reason}", { from, reason: (e as Error).message });
      try {
        conn.close();
      } catch { /* closed */ }
      return;
    } finally {
      pending--;
      const left = (pendingFrom.get(remote.hostname) ?? 1) - 1;
      if (left > 0) pendingFrom.set(remote.hostname, left);
      else pendingFrom.delete(remote.hostname);
    }
    if (host === null) {
      count("discovery");
      try {
        conn.close();
      } catch { /* closed */ }
      return;
    }
    const portName = hostPort(host.name);
    const old = hosts.get(host.name);
    if (old) old.close("replaced by a new connection from the same host");
    const link = new Link(
      {
        name: portName,
        kind: "host",
        peer: host.name,
        conn: host.handshake.conn,
        reader: host.handshake.reader,
      },
      {
        onFrame: (packet) => sw.forward(packet, portName, Date.now()),
        // A malformed message throws a ProtocolError: the link closes with one log line.
        onControl: (raw) => {
          const msg = parseHostMessage(raw);
          const now = Date.now();
          switch (msg.type) {
            case "traffic":
              vttif.accept(msg);
              // The reporter's VMs stay known here even when all their traffic takes fast
              // paths and no frame of theirs crosses the proxy any more.
              for (const [src] of msg.pairs) sw.refreshMac(parseMac(src), portName, now);
              for (const [src] of msg.group) sw.refreshMac(parseMac(src), portName, now);
              break;
            case "listening":
              listenAddresses.set(host.name, resolveListen(msg.address, remote.hostname));
              adapt.reconcile(now);
              break;
            case "peer-up":
            case "peer-down":
            case "rules-applied":
              adapt.onHostMessage(host.name, msg, now);
              break;
          }
        },
        onClose: (reason, l) => {
          if (hosts.get(host.name) === l) {
            hosts.delete(host.name);
            sw.detach(portName);
            listenAddresses.delete(host.name);
            adapt.onHostDown(host.name, Date.now());
          }
          log.info("Host {host} left: {reason}", { host: host.name, reason });
          events.emit({ type: "host", at: Date.now(), host: host.name, state: "left", reason });
        },
      },
      {
        queueBytes: config.queueBytes,
        keepaliveMs: config.keepalive,
        deadAfterMs: config.deadAfter,
      },
    );
    hosts.set(host.name, link);
    sw.attach(link);
    adapt.onHostUp(host.name);
    // Operator rules for this host outlive its reconnects.
    for (const rule of hostRules.get(host.name)?.values() ?? []) {
      link.sendControl({ type: "rule-add", rule });
    }
    log.info("Host {host} joined from {from}", { host: host.name, from });
    events.emit({ type: "host", at: Date.now(), host: host.name, state: "joined", from });
    await link.run(signal);
  };

  const acceptLoop = async () => {
    try {
      for await (const conn of listener) {
        // Bounded: handshakes in flight overall and per source address, so that a slow or
        // flooding client cannot starve the hosts that join properly.
        const source = (conn.remoteAddr as Deno.NetAddr).hostname;
        const fromSource = pendingFrom.get(source) ?? 0;
        if (pending >= config.maxHandshakes || fromSource >= config.maxHandshakesPerSource) {
          count(
            pending >= config.maxHandshakes
              ? "too many handshakes"
              : "too many handshakes from one source",
          );
          try {
            conn.close();
          } catch { /* closed */ }
          continue;
        }
        pending++;
        pendingFrom.set(source, fromSource + 1);
        serve(conn).catch((e) =>
          log.error("Host connection failed: {error}", { error: String(e) })
        );
      }
    } catch (e) {
      if (!signal.aborted) log.error("Accept loop stopped: {error}", { error: String(e) });
    }
  };
  tasks.push(acceptLoop());

  signal.addEventListener("abort", () => {
    try {
      listener.close();
    } catch { /* closed */ }
    for (const link of hosts.values()) link.close("proxy shutting down");
  }, { once: true });

  const hostRules = new Map<string, Map<string, WireRule>>();
  const api = config.api ?? DEFAULT_API;
  let bearer: string | null = null;
  if (!isLoopback(api.hostname)) {
    const path = `${config.stateDir}/api.token`;
    bearer = await readSecretFile(path).then((t) => t.trim()).catch(async () => {
      const t = crypto.getRandomValues(new Uint8Array(24)).toBase64({ alphabet: "base64url" });
      await writeSecretFile(path, t + "\n");
      return t;
    });
  }
  let apiBound = api;
  const server = Deno.serve(
    {
      hostname: api.hostname,
      port: api.port,
      signal,
      onListen: (a) => {
        apiBound = { hostname: a.hostname, port: a.port };
        log.info("Control API on http://{addr}/api/status{auth}", {
          addr: formatAddress(apiBound),
          auth: bearer ? " (bearer token in api.token required)" : "",
        });
      },
    },
    apiHandler({
      switch: sw,
      hosts: () => hosts,
      hostRules,
      startedAt: Date.now(),
      version: VERSION,
      vttif,
      adapt,
      events,
    }, bearer),
  );
  tasks.push(server.finished);

  const done = Promise.all(tasks).then(() => device?.close());
  return {
    switch: sw,
    device,
    address: { hostname: bound.hostname, port: bound.port },
    token,
    caPem: pki.caPem,
    hosts: () => hosts,
    refusals,
    vttif,
    adapt,
    events,
    get apiAddress() {
      return apiBound;
    },
    stop: async () => {
      stopper.abort();
      await done;
    },
    done,
  };
}
