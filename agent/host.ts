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
import { HostApi } from "./host_api.ts";
import { loadApiToken } from "./api_token.ts";
import type { Address } from "./config/types.ts";
import { HostState } from "./join/host_state.ts";
import { readSecretFile } from "./secret_file.ts";
import { parseJoinToken } from "./join/token.ts";
import type { Link } from "./link/link.ts";
import { tlsTransport, type Transport } from "./link/transport.ts";
import { logger } from "./log.ts";
import { dispatchProxyMessage } from "./proxy_control.ts";
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
  const tokenText = config.token ?? (await readToken(config.tokenFile!, deps.readTextFile)).trim();
  const token = parseJoinToken(tokenText);
  const state = await HostState.load(config.stateDir);
  const stopper = new AbortController();
  const signal = stopper.signal;
  const clock = deps.clock ?? systemClock;
  const transport = deps.transport ?? tlsTransport;

  // The VMs' side: the device on the switch, its traffic counted where it enters.
  const sw = new Switch({
    role: "host",
    maxMacs: config.maxMacs,
    macAgeMs: config.macAge,
    moveQuietMs: config.moveQuiet,
  });
  const device = deps.openDevice(config);
  sw.attach({ name: DEVICE_PORT, kind: "device", send: (p) => device.write(p) });
  const traffic = new TrafficCounter({ maxPairs: MAX_COUNTED_PAIRS });
  sw.observer = traffic;

  // Whether a VM is still here, when another host claims it: the bridge's forwarding database
  // when the agent's TAP is on a bridge; otherwise (pcap, no bridge) whether it was heard
  // within move-quiet, which is weaker.
  const bridgeErrors = new LogLimit(60_000); // one line a minute, however often hosts claim
  const bridge = config.bridge && !config.pcap ? new BridgeView(config.bridge, device.name) : null;
  const present = (mac: Mac, now: number): boolean => {
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

  // The star, and the fast paths the proxy asks for.
  const fastPaths = new FastPathManager(
    { sw, self: name, config, signal, transport, clock },
    (msg) => uplink.current()?.sendControl(msg),
  );
  sw.peerSources = fastPaths;
  let caPem = "";
  const uplink: Uplink = new Uplink({
    config,
    name,
    token,
    state,
    offload: device.offload,
    sw,
    transport,
    clock,
    onMessage: (msg, link) =>
      dispatchProxyMessage(
        { sw, fastPaths, present, now: () => clock.now(), onCertificate },
        msg,
        link,
      ),
    onBadMessage: (e) =>
      log.warn("Ignored a control message from the proxy: {error}", { error: e.message }),
    onUp: (link, welcome, ca) => {
      // Fast paths: listen with the certificate just issued, say where, re-announce links.
      caPem = ca;
      serveApiWith(welcome.certificatePem);
      const address = listenWith(welcome.certificatePem);
      if (address !== null) {
        link.sendControl(fastPaths.listeningMessage(address));
        fastPaths.reannounce();
      }
    },
  });
  /** Listens for fast paths with `certPem`; the address to advertise, or null. */
  function listenWith(certPem: string): string | null {
    try {
      return fastPaths.listen({ certPem, keyPem: state.key.keyPem, caPem });
    } catch (e) {
      log.warn("Cannot accept fast-path links (staying on the star): {error}", {
        error: (e as Error).message,
      });
      return null;
    }
  }
  function onCertificate(certPem: string): void {
    listenWith(certPem);
    serveApiWith(certPem);
  }
  /** Off loopback, the status API presents the host's current certificate. */
  function serveApiWith(certPem: string): void {
    if (!hostApi || hostApi.plain) return;
    hostApi.serve({ certPem, keyPem: state.key.keyPem }).catch((e) =>
      log.warn("Cannot serve the status API: {error}", { error: (e as Error).message })
    );
  }

  // The status API: on loopback now; off loopback over TLS from the first join on.
  const hostApi = config.api
    ? new HostApi(
      { name, switch: sw, uplink: () => uplink.current(), fastPaths, device },
      config.api,
      { token: await loadApiToken(config.stateDir), signal, clock },
    )
    : null;
  if (hostApi?.plain) await hostApi.serve(null);
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
