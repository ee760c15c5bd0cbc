/**
 * An overlay in one process for tests: a proxy and N hosts with real TLS links over loopback
 * and in-memory devices. Everything listens on 127.0.0.1 with kernel-chosen ports, so tests
 * can run in parallel.
 *
 * @module
 */

import type { Config } from "../../agent/config/schema.ts";
import { MemoryDevice, type MemoryDeviceOptions } from "../../agent/device/memory_device.ts";
import { type HostHandle, runHost } from "../../agent/host.ts";
import { formatJoinToken } from "../../agent/join/token.ts";
import { type ProxyHandle, runProxy } from "../../proxy/proxy.ts";
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
  /** `fetch` against the proxy's API with its token (see api_client.ts). */
  apiFetch(path: string, init?: RequestInit): Promise<Response>;
  /** Stops every host and the proxy and removes the state dir. */
  close(): Promise<void>;
}

/**
 * Starts a proxy and `hosts` hosts named h0, h1, ...; resolves when every host has joined.
 * `common` applies to all agents, `proxy`/`host(i)` to one side.
 */
export async function startOverlay(options: {
  hosts: number;
  common?: Partial<Config>;
  proxy?: Partial<Config>;
  host?: (i: number) => Partial<Config>;
  device?: MemoryDeviceOptions;
}): Promise<SimOverlay> {
  const stateDir = await Deno.makeTempDir({ prefix: "vnet-sim-" });
  const proxy = await runProxy(
    testConfig({
      proxy: true,
      stateDir,
      listen: LOOPBACK,
      api: LOOPBACK,
      ...options.common,
      ...options.proxy,
    }),
    { announceToken: () => {} },
  );
  const devices = Array.from(
    { length: options.hosts },
    (_, i) => new MemoryDevice({ name: `d${i}`, ...options.device }),
  );
  const hosts = await Promise.all(devices.map((d, i) =>
    runHost(
      testConfig({
        join: proxy.address,
        token: formatJoinToken(proxy.token),
        name: `h${i}`,
        ...options.common,
        ...options.host?.(i),
      }),
      { openDevice: () => d },
    )
  ));
  await Promise.all(hosts.map((h) => h.ready));
  return {
    proxy,
    hosts,
    devices,
    api: `http://127.0.0.1:${proxy.apiAddress.port}`,
    apiFetch: apiClient(proxy.apiAddress.port, stateDir),
    close: async () => {
      await Promise.all(hosts.map((h) => h.stop()));
      await proxy.stop();
      await Deno.remove(stateDir, { recursive: true });
    },
  };
}

/** Polls `cond` every 10 ms until it holds; throws naming `what` after `ms`. */
export async function until(cond: () => boolean, what: string, ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
