/**
 * Which host each VM lives behind, as the proxy knows it: the one derivation of the VM -> host
 * mapping from the proxy's MAC table, for adaptation, `agent paths` and `agent vms` alike.
 *
 * @module
 */

import type { MacTable } from "../agent/switch/mac_table.ts";
import { formatMac } from "../agent/switch/ethernet.ts";
import { hostOfPort } from "../agent/switch/port_name.ts";

/**
 * What `agent vms`, the API and the live page (proxy/page/app.js, which repeats it) call the
 * place of a MAC on the proxy's own LAN.
 */
export const LAN_HOST = "proxy (LAN)";

/** The last map built from a table: its version, and the span of time it holds for. */
const built = new WeakMap<
  MacTable,
  { version: number; from: number; until: number; map: ReadonlyMap<string, string> }
>();

/**
 * VM MAC (text) -> host name, for every MAC the table holds behind a host and has not aged
 * out at `now`; MACs on the proxy's own LAN are not VMs of any host and are left out.
 *
 * Built once and handed out again until the table changes (its version) or one of its
 * entries would age out: the re-plan asks every second, and building it for 100,000 VMs took
 * 100-300 ms of the proxy's one thread each time. The map is shared: read it, never change it.
 *
 * @example
 * ```ts
 * import { MacTable } from "../agent/switch/mac_table.ts";
 * import { vmHosts } from "./vm_hosts.ts";
 * const t = new MacTable({ maxEntries: 10, ageMs: 1000 });
 * t.learn(0x020000000001, "host:h1", 0);
 * t.learn(0x020000000002, "device", 0);
 * const m = vmHosts(t, 500);
 * if (m.get("02:00:00:00:00:01") !== "h1" || m.size !== 1) throw new Error();
 * if (vmHosts(t, 900) !== m) throw new Error("the same map while nothing changed");
 * if (vmHosts(t, 5000).size !== 0) throw new Error("aged out");
 * ```
 */
export function vmHosts(macs: MacTable, now: number): ReadonlyMap<string, string> {
  const last = built.get(macs);
  if (last?.version === macs.version && now >= last.from && now <= last.until) return last.map;
  const map = new Map<string, string>();
  let until = Infinity;
  for (const [mac, e] of macs.entries()) {
    const host = macs.lookup(mac, now) === undefined ? null : hostOfPort(e.port);
    if (host === null) continue;
    map.set(formatMac(mac), host);
    until = Math.min(until, e.lastSeen + macs.ageMs);
  }
  built.set(macs, { version: macs.version, from: now, until, map });
  return map;
}
