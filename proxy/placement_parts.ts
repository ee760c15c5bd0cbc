/**
 * VM placement in the proxy, built from the one validated config and the proxy's core:
 *
 *     star links, VTTIF's matrix, MAC table ──> UnderlayService (every update interval)
 *     reachability, host keys, star links ──> its RTT probes (probe-peer to a dialing host)
 *     VTTIF's graph, MAC table, slots, pins, underlay ──> PlacementService (plans on demand)
 *     PlacementService + --migrate-hook + migrate on ──> Migrator (one move at a time)
 *                                                         └─> events, `agent advise`
 *
 * @module
 */

import type { Clock } from "../agent/clock.ts";
import type { Config } from "../agent/config/schema.ts";
import { logger } from "../agent/log.ts";
import { parseMac } from "../agent/switch/ethernet.ts";
import { hostOfPort } from "../agent/switch/port_name.ts";
import type { HostPair } from "../adapt/planner.ts";
import type { ProxyCore } from "./core.ts";
import { commandHook } from "./migrate_hook.ts";
import { Migrator } from "./migrator.ts";
import { DEFAULT_MOVE_COST, PlacementService } from "./placement_service.ts";
import { UnderlayService } from "./underlay_service.ts";
import { vmHosts } from "./vm_hosts.ts";

/** The longest a hook may run (a live migration of a big VM over a slow path). */
export const HOOK_TIMEOUT_MS = 30 * 60_000;

/** Placement's parts of a proxy. */
export interface PlacementParts {
  underlay: UnderlayService;
  service: PlacementService;
  migrator: Migrator;
  /** Takes a newly admitted host's `--vm-slots`. */
  onAdmitted(host: { name: string; vmSlots: number | null }): void;
  /** Runs the underlay sampling and the migrator until `signal` aborts. */
  run(signal: AbortSignal): Promise<void>[];
}

/** Builds placement from `config` over `core`; nothing runs until `run`. */
export function buildPlacement(
  config: Config,
  core: Pick<ProxyCore, "sw" | "hosts" | "vttif" | "adapt" | "events">,
  clock: Clock,
): PlacementParts {
  const { sw, hosts, vttif, adapt, events } = core;
  // What the matrix says of a VM that moved within this is partly its old host's traffic.
  const settleMs = 3 * config.smoothing + config.updateInterval;
  const underlay = new UnderlayService({
    starLinks: () => hosts.links,
    matrix: () => vttif.vttif.smoothedMatrix(),
    vm: (mac) => vmSince(sw, mac, clock.now()),
    direct: (pair: HostPair) => adapt.pairs.get(pair)?.phase === "up",
    probeTargets: {
      // Only an address where the proxy reached the host itself, as for fast paths.
      listen: (h) => {
        const r = hosts.reachOf(h);
        return r?.state === "reachable" ? r.listen : null;
      },
      keyOf: (h) => hosts.identityOf(h)?.key ?? null,
      send: (h, msg) => hosts.links.get(h)?.sendControl(msg) ?? false,
    },
  }, { intervalMs: config.updateInterval, settleMs });
  const service = new PlacementService({
    graph: () => vttif.vttif.current().graph,
    vmHosts: () => activeVms(vmHosts(sw.macs, clock.now()), vttif),
    hosts: () => hosts.links.keys(),
    underlay,
  }, {
    maxMoves: config.maxMoves,
    minGain: config.minGain,
    moveCost: DEFAULT_MOVE_COST,
    latencyWeight: 0,
  });
  const hook = config.migrateHook
    ? commandHook(config.migrateHook, { timeoutMs: HOOK_TIMEOUT_MS })
    : null;
  if (hook && Deno.permissions.querySync({ name: "run" }).state !== "granted") {
    logger("placement").warn(
      "--migrate-hook is set but the agent may not run programs: start it with --allow-run " +
        "(deno task agent does); every move will fail until then",
    );
  }
  const migrator = new Migrator(
    {
      placement: service,
      hostOf: (vm) => {
        const port = sw.macs.lookup(parseMac(vm), clock.now());
        return port === undefined ? null : hostOfPort(port);
      },
      emit: (e) => events.emit({ ...e, at: clock.now() }),
      clock,
    },
    { enabled: config.migrate, hook },
    {
      settleMs: config.migrateSettle,
      intervalMs: Math.min(1000, config.updateInterval),
    },
  );
  return {
    underlay,
    service,
    migrator,
    onAdmitted: (host) => service.announce(host.name, host.vmSlots),
    run: (signal) => [underlay.run(signal, clock), migrator.run(signal)],
  };
}

/** The host behind VM `mac` and since when it is there, unless it aged out or is no VM's. */
function vmSince(
  sw: ProxyCore["sw"],
  mac: string,
  now: number,
): { host: string; since: number } | null {
  let m: number;
  try {
    m = parseMac(mac);
  } catch {
    return null; // not a MAC: no VM of this overlay
  }
  const e = sw.macs.get(m);
  const host = e && sw.macs.lookup(m, now) !== undefined ? hostOfPort(e.port) : null;
  return host === null ? null : { host, since: e!.since };
}

/**
 * The VMs that take a slot: MACs behind hosts that VTTIF has seen in unicast traffic lately.
 * A host's own bridge and TAP, and anything else that only multicasts, are not VMs; a VM
 * silent long enough to have left VTTIF's matrix takes no slot until it talks again.
 */
function activeVms(
  all: ReadonlyMap<string, string>,
  vttif: ProxyCore["vttif"],
): Map<string, string> {
  const seen = new Set<string>(vttif.vttif.current().graph.vms);
  for (const e of vttif.vttif.smoothedMatrix()) seen.add(e.src).add(e.dst);
  const out = new Map<string, string>();
  for (const mac of seen) {
    const host = all.get(mac);
    if (host !== undefined) out.set(mac, host);
  }
  return out;
}
