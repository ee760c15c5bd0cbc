/**
 * What the proxy does when its switch learns, moves, refuses or ages out a VM's MAC: an event
 * for each but ageing, a log line per move, the old host told to forget a VM that moved away,
 * the adaptation re-planned at once, and refused claims logged at most once per claimant and
 * MAC per 10 s (a spoofer must not flood the log).
 *
 *     Switch.forward ──listener──> events, log, old host (mac-moved), AdaptLoop.onVmMoved,
 *                                  fast-path peers of both hosts (peer-macs remove / add)
 *     MacTable.sweep ──onAged────> fast-path peers of the host it was behind (peer-macs remove)
 *
 * @module
 */

import type { AdaptLoop } from "../adapt/loop.ts";
import { logger } from "../agent/log.ts";
import { formatMac } from "../agent/switch/ethernet.ts";
import { hostOfPort } from "../agent/switch/port_name.ts";
import type { Switch } from "../agent/switch/switch.ts";
import type { EventHub } from "./events.ts";
import type { HostRegistry } from "./host_registry.ts";
import { LogLimit } from "../agent/log_limit.ts";

/** Makes the proxy's switch report MAC changes to everyone who acts on them. */
export function followMacs(
  sw: Switch,
  deps: { events: EventHub; adapt: AdaptLoop; hosts: HostRegistry },
): void {
  const log = logger("proxy");
  // A spoofer must not flood the log: one line per claimant and MAC per 10 s.
  const refusals = new LogLimit(10_000);
  sw.listener = {
    onMacLearned: (mac, port, now) => {
      const text = formatMac(mac);
      deps.events.emit({ type: "vm", at: now, mac: text, port, change: "learned" });
      const host = hostOfPort(port);
      if (host !== null) deps.adapt.onVmPlaced(text, host, "add");
    },
    onMacMoved: (mac, from, to, now) => {
      // Runs inside Switch.forward: the frame that moved the VM is on its way already.
      const text = formatMac(mac);
      log.info("VM {mac} moved from {from} to {to}", { mac: text, from, to });
      deps.events.emit({ type: "vm", at: now, mac: text, from, to, change: "moved" });
      const oldHost = hostOfPort(from);
      const newHost = hostOfPort(to);
      if (oldHost !== null) {
        deps.hosts.links.get(oldHost)?.sendControl({
          type: "mac-moved",
          mac: text,
          to: newHost ?? to,
        });
        deps.adapt.onVmPlaced(text, oldHost, "remove");
      }
      if (newHost !== null) deps.adapt.onVmPlaced(text, newHost, "add");
      deps.adapt.onVmMoved(text, now);
    },
    onMacRefused: (mac, claimedBy, heldBy, now) => {
      const text = formatMac(mac);
      if (!refusals.shouldLog(`${text}|${claimedBy}`, now)) return;
      log.warn(
        "Refused {mac} from {claimedBy}: it is active behind {heldBy} (spoofing, or a move too soon)",
        { mac: text, claimedBy, heldBy },
      );
      deps.events.emit({ type: "vm", at: now, mac: text, claimedBy, heldBy, change: "refused" });
    },
  };
  // An aged-out MAC left its host as surely as a moved one: without this remove, the host's
  // fast-path peers would go on accepting the address from it after the VM reappeared behind
  // another host (where it is learned as new, so no move ever withdraws it).
  sw.macs.onAged = (mac, entry) => {
    const host = hostOfPort(entry.port);
    if (host !== null) deps.adapt.onVmPlaced(formatMac(mac), host, "remove");
  };
}
