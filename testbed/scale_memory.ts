/**
 * `bench:scale`'s memory variant: the proxy and N hosts in this process, on the memory
 * transport (each host dialing from its own address), on the system clock. Its figures are
 * the whole process, hosts included: the baseline the tls variant stands beside.
 *
 *     runProxy(memory transport) <── HostFleet (established) + HostFleet (storm)
 *
 * @module
 */

import { systemClock } from "../agent/clock.ts";
import { formatJoinToken } from "../agent/join/token.ts";
import { MemoryNetwork } from "../agent/link/memory_transport.ts";
import { runProxy } from "../proxy/proxy.ts";
import { apiClient } from "./api_client.ts";
import { testConfig } from "./config.ts";
import { HostFleet } from "./scale_fleet.ts";
import { slowCallsLogged } from "./scale_probe.ts";
import {
  establishedCount,
  type Fleets,
  measure,
  type ScaleOptions,
  type ScaleRow,
} from "./scale_run.ts";

/** Runs every phase with `n` hosts in this process. */
export async function memoryRun(n: number, o: ScaleOptions): Promise<ScaleRow> {
  const stateRoot = await Deno.makeTempDir({ prefix: "vnet-scale-" });
  const network = new MemoryNetwork();
  const vms = n * o.vmsPerHost;
  const proxyConfig = testConfig({
    proxy: true,
    stateDir: `${stateRoot}/proxy`,
    listen: { hostname: "10.0.0.1", port: 7800 },
    api: { hostname: "127.0.0.1", port: 0 },
    fastPaths: 0,
    maxMacs: Math.max(65_536, 2 * vms),
    maxVms: Math.max(65_536, 2 * vms),
    maxHandshakesPerSource: 256,
    logLevel: "warning",
  });
  const proxy = await runProxy(proxyConfig, {
    announceToken: () => {},
    transport: network.transport("10.0.0.1"),
    clock: systemClock,
  });
  const e = establishedCount(n);
  const fleet = (first: number, count: number) =>
    new HostFleet({
      proxy: proxy.address,
      token: formatJoinToken(proxy.token),
      firstHost: first,
      hosts: count,
      vmsPerHost: o.vmsPerHost,
      transport: (i) => network.transport(`11.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`),
      clock: systemClock,
      stateRoot,
    });
  const fleets = inProcess([fleet(0, e), fleet(e, n - e)], e * o.vmsPerHost, vms);
  try {
    return await measure("memory (in-process)", n, o, {
      pid: Deno.pid,
      workerPids: [],
      call: slowCallsLogged(apiClient(proxy.apiAddress.port, proxyConfig.stateDir)),
      keepaliveMs: proxyConfig.keepalive,
    }, fleets);
  } finally {
    await fleets.stop();
    await proxy.stop();
    await Deno.remove(stateRoot, { recursive: true });
  }
}

/** Two fleets in this process (the established hosts, then the storm) as {@linkcode Fleets}. */
function inProcess(groups: [HostFleet, HostFleet], knownVms: number, vms: number): Fleets {
  const [established, storm] = groups;
  const e = established.size;
  const hostOf = (h: number) => (h < e ? [established, h] as const : [storm, h - e] as const);
  return {
    join: async (g) => (await (g === "established" ? established : storm).join()).ms,
    claim: (overMs) => Promise.resolve(groups.forEach((f) => f.claim(knownVms, overMs))),
    ring: (on, everyMs, group) =>
      Promise.resolve(
        group === "established"
          ? established.ring(on, knownVms, everyMs)
          : groups.forEach((f) => f.ring(on, vms, everyMs)),
      ),
    broadcast: (h) => Promise.resolve(hostOf(h)[0].broadcast(hostOf(h)[1])),
    arp: (h, t) => Promise.resolve(hostOf(h)[0].arpFor(hostOf(h)[1], t)),
    received: () => {
      const r = established.received + storm.received;
      established.received = storm.received = 0;
      return Promise.resolve(r);
    },
    health: (k) => Promise.resolve(established.health(k)),
    reconnects: () =>
      Promise.resolve(
        groups.reduce((s, f) => s + f.hosts.reduce((t, h) => t + h.joins() - 1, 0), 0),
      ),
    stop: async () => {
      await Promise.all(groups.map((f) => f.stop()));
    },
  };
}
