/**
 * The proxy's core, built from the one validated config: the switch, the connected hosts,
 * the event stream, VTTIF and the adaptation loop, and who decides a MAC's move. No socket
 * and no file here: the join listener, the LAN device and the API attach to it
 * (proxy/proxy.ts assembles them).
 *
 *     Switch ──observer──> VttifService ──onChange──> AdaptLoop ──plans──> hosts
 *        └──listener──> mac_events (events, old host, fast-path peers)
 *        └──movePolicy──> MacAuthority (the old host's word)
 *
 * @module
 */

import type { Clock } from "../agent/clock.ts";
import type { Config } from "../agent/config/schema.ts";
import { Switch } from "../agent/switch/switch.ts";
import { MAX_COUNTED_PAIRS } from "../agent/traffic/counter.ts";
import { AdaptLoop } from "../adapt/loop.ts";
import { adaptSettingsOf } from "../adapt/settings.ts";
import { EventHub } from "./events.ts";
import { HostRegistry } from "./host_registry.ts";
import { MacAuthority } from "./mac_authority.ts";
import { followMacs } from "./mac_events.ts";
import { vmHosts } from "./vm_hosts.ts";
import { VttifService } from "./vttif_service.ts";

/** The proxy's subsystems that hold its state. */
export interface ProxyCore {
  sw: Switch;
  hosts: HostRegistry;
  events: EventHub;
  vttif: VttifService;
  adapt: AdaptLoop;
  macs: MacAuthority;
}

/** Builds and wires the core; nothing runs until `vttif.run` and `adapt.run` are called. */
export function buildProxyCore(config: Config, clock: Clock): ProxyCore {
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
      reach: (h) => hosts.reachOf(h),
      recheck: (h) => void hosts.reach?.check(h, true),
    },
    adaptSettingsOf(config),
    // Long enough for VTTIF to see the traffic again: a few reports, smoothing, hysteresis.
    { warmupMs: 3 * config.updateInterval + config.smoothing + config.hysteresis, clock },
  );
  vttif.onChange((e) => adapt.onTopologyChange(e.detectedAt));
  adapt.onEvent = (e) => events.emit({ ...e, at: clock.now() });
  followMacs(sw, { events, adapt, hosts });

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
  return { sw, hosts, events, vttif, adapt, macs };
}
