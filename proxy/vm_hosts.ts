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

/**
 * VM MAC (text) -> host name, for every MAC the table holds behind a host and has not aged
 * out at `now`; MACs on the proxy's own LAN are not VMs of any host and are left out.
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
 * if (vmHosts(t, 5000).size !== 0) throw new Error("aged out");
 * ```
 */
export function vmHosts(macs: MacTable, now: number): Map<string, string> {
  const out = new Map<string, string>();
  for (const [mac] of macs.entries()) {
    const port = macs.lookup(mac, now);
    const host = port === undefined ? null : hostOfPort(port);
    if (host !== null) out.set(formatMac(mac), host);
  }
  return out;
}
