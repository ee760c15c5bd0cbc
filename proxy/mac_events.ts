/**
 * What the proxy does when its switch learns, moves or refuses a VM's MAC: an event for each,
 * a log line per move, the old host told to forget a VM that moved away, the adaptation
 * re-planned at once, and refused claims logged at most once per claimant and MAC per 10 s (a
 * spoofer must not flood the log).
 *
 *     Switch.forward ──listener──> events, log, old host (mac-moved), AdaptLoop.onVmMoved
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

/** How often one claimant's refused claim on one MAC is logged at most. */
const REFUSAL_LOG_MS = 10_000;

/** Remembered (MAC, claimant) pairs before the memory is reset. */
const MAX_REFUSALS_REMEMBERED = 10_000;

/**
 * Says whether a refused claim should be logged now: once per key and period, with bounded
 * memory.
 *
 * @example
 * ```ts
 * import { RefusalLog } from "./mac_events.ts";
 * const r = new RefusalLog();
 * if (!r.shouldLog("m|h2", 0) || r.shouldLog("m|h2", 5000) || !r.shouldLog("m|h2", 10_000)) {
 *   throw new Error();
 * }
 * ```
 */
export class RefusalLog {
  readonly #last = new Map<string, number>();

  shouldLog(key: string, now: number): boolean {
    if (now - (this.#last.get(key) ?? -Infinity) < REFUSAL_LOG_MS) return false;
    if (this.#last.size > MAX_REFUSALS_REMEMBERED) this.#last.clear();
    this.#last.set(key, now);
    return true;
  }
}

/** Makes the proxy's switch report MAC changes to everyone who acts on them. */
export function followMacs(
  sw: Switch,
  deps: { events: EventHub; adapt: AdaptLoop; hosts: HostRegistry },
): void {
  const log = logger("proxy");
  const refusals = new RefusalLog();
  sw.listener = {
    onMacLearned: (mac, port, now) =>
      deps.events.emit({ type: "vm", at: now, mac: formatMac(mac), port, change: "learned" }),
    onMacMoved: (mac, from, to, now) => {
      // Runs inside Switch.forward: the frame that moved the VM is on its way already.
      const text = formatMac(mac);
      log.info("VM {mac} moved from {from} to {to}", { mac: text, from, to });
      deps.events.emit({ type: "vm", at: now, mac: text, from, to, change: "moved" });
      const oldHost = hostOfPort(from);
      if (oldHost !== null) {
        deps.hosts.links.get(oldHost)?.sendControl({
          type: "mac-moved",
          mac: text,
          to: hostOfPort(to) ?? to,
        });
      }
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
}
