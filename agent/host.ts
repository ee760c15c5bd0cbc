/**
 * Host mode (`agent --join PROXY:PORT`): attaches to the VMs' network, keeps the uplink to
 * the proxy up (reconnecting with exponential backoff and jitter), and switches frames
 * between the device and its links.
 *
 *     device ──pumpDevice──> Switch(host) ──> uplink "proxy" (star) or a fast-path "peer:NAME"
 *     uplink/peers ──Link.run──> Switch(host) ──> device
 *
 * Assembled from named subsystems, each built from the one validated {@linkcode Config}:
 * uplink.ts (the star link and its reconnects), proxy_control.ts (the proxy's instructions),
 * fastpath/manager.ts (fast-path links), traffic/reporter.ts (reports to VTTIF), host_api.ts
 * (the status endpoint). The device comes from an injected factory so that tests run whole
 * hosts on in-memory devices.
 *
 * @module
 */

import { type Clock, systemClock } from "./clock.ts";
import type { Config } from "./config/schema.ts";
import type { Device, PacketBatch } from "./device/device.ts";
import { pumpDevice } from "./device/pump.ts";
import { FastPathManager } from "./fastpath/manager.ts";
import { HostApi, type HostView } from "./host_api.ts";
import { loadApiToken } from "./api_token.ts";
import type { Address } from "./config/types.ts";
import { HostState } from "./join/host_state.ts";
import { readSecretFile } from "./secret_file.ts";
import { parseJoinToken } from "./join/token.ts";
import type { Link } from "./link/link.ts";
import { tlsTransport, type Transport } from "./link/transport.ts";
import { logger } from "./log.ts";
import { dispatchProxyMessage, proxyControlContext } from "./proxy_control.ts";
import { DEVICE_PORT } from "./switch/port_name.ts";
import { Switch } from "./switch/switch.ts";
import type { Mac } from "./switch/ethernet.ts";
import { BridgeView } from "./device/bridge_fdb.ts";
import { LogLimit } from "./log_limit.ts";
import { MAX_COUNTED_PAIRS, TrafficCounter } from "./traffic/counter.ts";
import { reportTraffic } from "./traffic/reporter.ts";
import { Uplink } from "./uplink.ts";

/** What a running host exposes to its owner (main.ts, tests, the status endpoint). */
export interface HostHandle {
  readonly name: string;
  readonly switch: Switch;
  readonly device: Device;
  /** The current uplink, or null while (re)connecting. */
  uplink(): Link | null;
  /** Fast-path links of this host. */
  readonly fastPaths: FastPathManager;
  /** Where the host's status endpoint listens, when `--api` was given and it is serving. */
  readonly apiAddress: Address | null;
  /** Number of successful joins so far (1 after the first, +1 per reconnect). */
  joins(): number;
  /** Resolves once the first uplink is established. */
  ready: Promise<void>;
  /** Stops everything: links closed with a goodbye, device closed. */
  stop(): Promise<void>;
  /** Resolves when the host has stopped (after stop(), or a fatal error such as a refused token). */
  done: Promise<void>;
  /** Why the host stopped by itself (e.g. the proxy refused its token), or null. */
  fatal(): string | null;
}

/** Injected edges. */
export interface HostDeps {
  openDevice(config: Config): Device;
  readTextFile?(path: string): Promise<string>;
  /** How links reach the proxy and peers: TLS unless a test runs on the memory network. */
  transport?: Transport;
  /** Whose time everything waits on: the system's unless a test drives time. */
  clock?: Clock;
  /** The device pump's batch: 32 slots of 64 KiB unless many simulated hosts share a process. */
  pumpBatch?: PacketBatch;
}

/** The machine's host name made into a valid overlay name. */
export function defaultHostName(): string {
  const raw = Deno.hostname().toLowerCase().replace(/[^a-z0-9-]/g, "-").replace(/^-+|-+$/g, "");
  return raw.slice(0, 63) || "host";
}

/**
 * The join token from `--token-file`: a secret, so the file must be private (0600, as the
 * proxy writes join.token); a missing or open file is an error that says what to do.
 */
async function readToken(path: string, read?: (path: string) => Promise<string>): Promise<string> {
  if (read) return await read(path);
  try {
    return await readSecretFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(
        `Cannot read the join token from ${path} (--token-file): no such file. Copy the ` +
          "proxy's state-dir/join.token there (keep it 0600: it admits hosts)",
      );
    }
    throw new Error(`Cannot read the join token (--token-file): ${(e as Error).message}`);
  }
}

/** Starts a host; rejects only for errors found before anything runs (bad token file...). */
export async function runHost(config: Config, deps: HostDeps): Promise<HostHandle> {
  const log = logger("host");
  const name = config.name ?? defaultHostName();
  const token = parseJoinToken(
    config.token ?? (await readToken(config.tokenFile!, deps.readTextFile)).trim(),
  );
  const state = await HostState.load(config.stateDir);
  const stopper = new AbortController();
  const { signal } = stopper;
  const { clock = systemClock, transport = tlsTransport } = deps;

  const { sw, device, traffic } = vmSide(config, deps.openDevice);
  const present = vmPresence(config, sw, device.name);

  // The fast paths the proxy asks for, and the status API (on loopback now; off loopback
  // over TLS from the first join on).
  const fastPaths = new FastPathManager(
    { sw, self: name, config, signal, transport, clock },
    (msg) => uplink.current()?.sendControl(msg),
  );
  sw.peerSources = fastPaths;
  const hostApi = await statusApi(
    config,
    { name, switch: sw, uplink: () => uplink.current(), fastPaths, device },
    { signal, clock },
  );
  const certificate = certificateUser({ fastPaths, hostApi, keyPem: state.key.keyPem });
  const control = proxyControlContext({ sw, fastPaths, present, clock, transport, certificate });

  // The star.
  const uplink: Uplink = new Uplink({
    config,
    name,
    token,
    state,
    offload: device.offload,
    sw,
    transport,
    clock,
    onMessage: (msg, link) => dispatchProxyMessage(control, msg, link),
    onBadMessage: (e) => log.warn("Ignored a proxy message: {error}", { error: e.message }),
    onUp: (link, welcome, ca) => {
      // Listen with the certificate just issued, say where, re-announce the links.
      const address = certificate.use(welcome.certificatePem, ca);
      if (address !== null) {
        link.sendControl(fastPaths.listeningMessage(address));
        fastPaths.reannounce();
      }
    },
  });

  const done = Promise.all([
    pumpDevice(device, sw, { signal, clock, batch: deps.pumpBatch }),
    uplink.run(signal, () => stopper.abort()),
    reportTraffic(traffic, uplink, { clock, signal }),
    hostApi?.finished,
  ]).then(() => device.close());
  return {
    name,
    switch: sw,
    device,
    fastPaths,
    get apiAddress() {
      return hostApi?.address ?? null;
    },
    uplink: () => uplink.current(),
    joins: () => uplink.joins,
    ready: uplink.ready,
    stop: async () => {
      stopper.abort();
      await done;
    },
    done,
    fatal: () => uplink.fatal,
  };
}

/** The status API when `--api` is given: serving on loopback at once; off loopback, later. */
async function statusApi(
  config: Config,
  view: HostView,
  parts: { signal: AbortSignal; clock: Clock },
): Promise<HostApi | null> {
  if (!config.api) return null;
  const api = new HostApi(view, config.api, {
    token: await loadApiToken(config.stateDir),
    ...parts,
  });
  if (api.plain) await api.serve(null);
  return api;
}

/** The VMs' side: the device on the switch, its traffic counted where it enters. */
function vmSide(config: Config, openDevice: (config: Config) => Device) {
  const sw = new Switch({
    role: "host",
    maxMacs: config.maxMacs,
    macAgeMs: config.macAge,
    moveQuietMs: config.moveQuiet,
  });
  const device = openDevice(config);
  sw.attach({ name: DEVICE_PORT, kind: "device", send: (p) => device.write(p) });
  const traffic = new TrafficCounter({ maxPairs: MAX_COUNTED_PAIRS });
  sw.observer = traffic;
  return { sw, device, traffic };
}

/**
 * Whether a VM is still here, when another host claims it: the bridge's forwarding database
 * when the agent's TAP is on a bridge; otherwise (pcap, no bridge) whether it was heard within
 * move-quiet, which is weaker.
 */
function vmPresence(
  config: Config,
  sw: Switch,
  deviceName: string,
): (mac: Mac, now: number) => boolean {
  const log = logger("host");
  const bridgeErrors = new LogLimit(60_000); // one line a minute, however often hosts claim
  const bridge = config.bridge && !config.pcap ? new BridgeView(config.bridge, deviceName) : null;
  return (mac, now) => {
    if (bridge) {
      try {
        return bridge.present(mac, now);
      } catch (e) {
        if (bridgeErrors.shouldLog("bridge", now)) {
          log.warn("{error}; judging by the last frame instead", { error: (e as Error).message });
        }
      }
    }
    const e = sw.macs.get(mac);
    return e?.port === DEVICE_PORT && now - e.lastSeen < config.moveQuiet;
  };
}

/**
 * Presents the host's certificate (a join's, a renewal's) where it is needed: the fast-path
 * listener and, off loopback, the status API. `use` returns the fast-path address to
 * advertise, or null when the host cannot accept fast paths (it stays on the star).
 */
function certificateUser(parts: {
  fastPaths: FastPathManager;
  hostApi: HostApi | null;
  keyPem: string;
}): { use(certPem: string, caPem?: string): string | null; caPem(): string } {
  const log = logger("host");
  let ca = "";
  return {
    caPem: () => ca,
    use(certPem, caPem) {
      if (caPem !== undefined) ca = caPem;
      if (parts.hostApi && !parts.hostApi.plain) {
        parts.hostApi.serve({ certPem, keyPem: parts.keyPem }).catch((e) =>
          log.warn("Cannot serve the status API: {error}", { error: (e as Error).message })
        );
      }
      try {
        return parts.fastPaths.listen({ certPem, keyPem: parts.keyPem, caPem: ca });
      } catch (e) {
        log.warn("Cannot accept fast-path links (staying on the star): {error}", {
          error: (e as Error).message,
        });
        return null;
      }
    },
  };
}
