/**
 * An overlay in one process for tests: a proxy and N hosts on in-memory devices.
 *
 * By default it runs on the memory network (agent/link/memory_transport.ts) with a
 * {@linkcode ManualClock}: no socket, no TLS record, and no real waiting, since a test moves
 * time with {@linkcode SimOverlay.until} (the proxy at 10.0.0.1, host i at 10.0.0.(i+2)).
 * `transport: "tls"` runs it on real TLS over loopback with the system clock instead, for the
 * tests that are about the sockets themselves (Nagle, pre-auth floods on real listeners).
 * Only the proxy's HTTP API is always a real loopback socket.
 *
 * @module
 */

import type { Config } from "../agent/config/schema.ts";
import { type Clock, systemClock } from "../agent/clock.ts";
import { ManualClock } from "../agent/manual_clock.ts";
import { MemoryNetwork } from "../agent/link/memory_transport.ts";
import { tlsTransport, type Transport } from "../agent/link/transport.ts";
import { MemoryDevice, type MemoryDeviceOptions } from "../agent/device/memory_device.ts";
import { type HostHandle, runHost } from "../agent/host.ts";
import { formatJoinToken } from "../agent/join/token.ts";
import { type ProxyHandle, runProxy } from "../proxy/proxy.ts";
import { testConfig } from "./config.ts";
import { apiClient } from "./api_client.ts";

/** Loopback with any free port. */
export const LOOPBACK = { hostname: "127.0.0.1", port: 0 };

/** A running in-process overlay. */
export interface SimOverlay {
  proxy: ProxyHandle;
  hosts: HostHandle[];
  devices: MemoryDevice[];
  /** Base URL of the proxy's API. */
  api: string;
  /** The API's bearer token (state-dir/api.token). */
  apiToken: string;
  /** Host i's state directory (its key, rejoin credential and API token). */
  hostStateDir(i: number): string;
  /** `GET path` on host i's status API (on loopback), with the token from its state dir. */
  hostApiFetch(i: number, path: string): Promise<Response>;
  /** `fetch` against the proxy's API with its token (see api_client.ts). */
  apiFetch(path: string, init?: RequestInit): Promise<Response>;
  /** The overlay's clock: a ManualClock on the memory network. */
  clock: Clock;
  /** The memory network, or null on TLS. */
  network: MemoryNetwork | null;
  /** A transport from a new source address (memory: 10.0.0.200+), e.g. for a hostile client. */
  transportFrom(source?: string): Transport;
  /**
   * Waits until `cond` holds: on a manual clock by moving time in 10 ms steps (at most `ms` of
   * clock time), otherwise by polling in real time. Throws naming `what` when it never holds.
   */
  until(cond: () => boolean, what: string, ms?: number): Promise<void>;
  /** Lets `ms` pass: moves a manual clock, or sleeps for real. */
  pass(ms: number): Promise<void>;
  /**
   * Starts one more host joining with the token, from a new source address, on the overlay's
   * transport and clock (stopped by {@linkcode close} if the test does not stop it).
   */
  joinAs(name: string, config?: Partial<Config>, device?: MemoryDevice): Promise<HostHandle>;
  /** Stops every host and the proxy and removes the state dir. */
  close(): Promise<void>;
}

/** What an overlay is started with (see {@linkcode startOverlay}). */
export interface OverlayOptions {
  hosts: number;
  common?: Partial<Config>;
  proxy?: Partial<Config>;
  host?: (i: number) => Partial<Config>;
  device?: MemoryDeviceOptions;
  /** "memory" (default): memory network and a manual clock; "tls": loopback, real time. */
  transport?: "memory" | "tls";
  /** The proxy's LAN side: bridged to this device (as `--tap`), none by default. */
  lan?: MemoryDevice;
}

/** The network and the time an overlay runs on. */
interface Underlay {
  onMemory: boolean;
  network: MemoryNetwork | null;
  clock: Clock;
  /** A transport whose connections come from `source`. */
  from(source: string): Transport;
}

/** The memory network and a manual clock, or loopback TLS and real time. */
function underlayFor(options: OverlayOptions): Underlay {
  const onMemory = (options.transport ?? "memory") === "memory";
  const network = onMemory ? new MemoryNetwork() : null;
  return {
    onMemory,
    network,
    clock: onMemory ? new ManualClock() : systemClock,
    from: (source) => network?.transport(source) ?? tlsTransport,
  };
}

/**
 * Starts a proxy and `hosts` hosts named h0, h1, ...; resolves when every host has joined.
 * `common` applies to all agents, `proxy`/`host(i)` to one side.
 */
export async function startOverlay(options: OverlayOptions): Promise<SimOverlay> {
  const stateDir = await Deno.makeTempDir({ prefix: "vnet-sim-" });
  const net = underlayFor(options);
  const { clock } = net;
  let strangers = 200;
  const proxy = await runProxy(
    testConfig({
      proxy: true,
      stateDir,
      listen: net.onMemory ? { hostname: "10.0.0.1", port: 7800 } : LOOPBACK,
      api: LOOPBACK,
      tap: options.lan ? "lan0" : null,
      ...options.common,
      ...options.proxy,
    }),
    {
      announceToken: () => {},
      transport: net.from("10.0.0.1"),
      clock,
      openDevice: options.lan ? () => options.lan! : undefined,
    },
  );
  /** Host `name` with `config` on top of the common settings, joining from `source`. */
  const host = (name: string, config: Partial<Config>, device: MemoryDevice, source: string) => {
    const c = testConfig({
      join: proxy.address,
      token: formatJoinToken(proxy.token),
      name,
      ...options.common,
      ...config,
    });
    return {
      config: c,
      run: runHost(c, { openDevice: () => device, transport: net.from(source), clock }),
    };
  };
  const devices = Array.from(
    { length: options.hosts },
    (_, i) => new MemoryDevice({ name: `d${i}`, ...options.device }),
  );
  const started = devices.map((d, i) =>
    host(`h${i}`, options.host?.(i) ?? {}, d, `10.0.0.${i + 2}`)
  );
  const hosts = await Promise.all(started.map((h) => h.run));
  await Promise.all(hosts.map((h) => h.ready));
  const extra: HostHandle[] = [];
  return {
    proxy,
    hosts,
    devices,
    api: `http://127.0.0.1:${proxy.apiAddress.port}`,
    apiFetch: apiClient(proxy.apiAddress.port, stateDir),
    apiToken: Deno.readTextFileSync(`${stateDir}/api.token`).trim(),
    hostStateDir: (i) => started[i].config.stateDir,
    hostApiFetch: (i, path) => {
      const at = hosts[i].apiAddress;
      if (!at) throw new Error(`Cannot reach h${i}'s status API: give it --api (host: (i) => ...)`);
      return apiClient(at.port, started[i].config.stateDir)(path);
    },
    clock,
    network: net.network,
    transportFrom: (source) => net.from(source ?? `10.0.0.${strangers++}`),
    until: (cond, what, ms = 8000) =>
      clock instanceof ManualClock
        ? clock.advanceUntil(cond, what, { stepMs: 10, maxMs: ms })
        : untilReal(cond, what, ms),
    pass: (ms) =>
      clock instanceof ManualClock ? clock.advance(ms) : new Promise((r) => setTimeout(r, ms)),
    joinAs: async (name, config = {}, device = new MemoryDevice()) => {
      const h = await host(name, config, device, `10.0.0.${strangers++}`).run;
      extra.push(h);
      return h;
    },
    close: async () => {
      await Promise.all([...hosts, ...extra].map((h) => h.stop()));
      await proxy.stop();
      await Deno.remove(stateDir, { recursive: true });
    },
  };
}

/** Polls `cond` every 10 ms of real time until it holds; throws naming `what` after `ms`. */
export async function untilReal(cond: () => boolean, what: string, ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
