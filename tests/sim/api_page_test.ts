/**
 * Long API lists come in pages: `/api/vms?offset&limit` in MAC order, `/api/status?limit=0` as
 * a summary with the host count, and without parameters the whole list (what the CLI reads).
 */
import { assertEquals } from "../support/assert.ts";
import { frame, vmMac } from "../support/frames.ts";
import { startOverlay } from "../support/sim.ts";
import { BROADCAST_MAC, formatMac } from "../../agent/switch/ethernet.ts";
import type { StatusReply, VmsReply } from "../../proxy/api_types.ts";

Deno.test("api pages: VMs in MAC order a page at a time, hosts summarised, bad pages refused", async () => {
  const sim = await startOverlay({ hosts: 3 });
  try {
    // Five VMs, learned from their broadcasts (out of order on purpose).
    for (const [d, n] of [[0, 5], [1, 2], [2, 4], [0, 1], [1, 3]] as const) {
      sim.devices[d].inject(frame(BROADCAST_MAC, vmMac(n)));
    }
    await sim.until(() => sim.proxy.switch.macs.size === 5, "five VMs learned");
    const get = async <T>(path: string) => (await (await sim.apiFetch(path)).json()) as T;

    const all = await get<VmsReply>("/api/vms");
    assertEquals(all.map((v) => v.mac), [1, 2, 3, 4, 5].map((n) => formatMac(vmMac(n))));
    const page = await get<VmsReply>("/api/vms?offset=1&limit=2");
    assertEquals(page.map((v) => v.mac), [2, 3].map((n) => formatMac(vmMac(n))));
    assertEquals(await get<VmsReply>("/api/vms?offset=9"), []);
    const whole = await get<StatusReply>("/api/status");
    assertEquals([whole.hosts.length, whole.hostCount], [3, 3]);
    const summary = await get<StatusReply>("/api/status?limit=0");
    assertEquals([summary.hosts.length, summary.hostCount, summary.macs], [0, 3, 5]);
    const second = await get<StatusReply>("/api/status?offset=1&limit=1");
    assertEquals(second.hosts.map((h) => h.name), [whole.hosts[1].name]);
    assertEquals(Object.keys(second.ports), [whole.hosts[1].port], "its port alone");

    // A VM that appears shows in the next list, in its place (the order is kept per change
    // of the table, not recomputed per request).
    sim.devices[2].inject(frame(BROADCAST_MAC, vmMac(0)));
    await sim.until(() => sim.proxy.switch.macs.size === 6, "a sixth VM learned");
    const after = await get<VmsReply>("/api/vms?limit=2");
    assertEquals(after.map((v) => v.mac), [0, 1].map((n) => formatMac(vmMac(n))));
    assertEquals((await get<VmsReply>("/api/vms")).length, 6);

    const bad = await sim.apiFetch("/api/vms?limit=-1");
    assertEquals(bad.status, 400);
    assertEquals(
      (await bad.json()).error,
      "Cannot page the reply: limit is a whole number >= 0, got -1",
    );
  } finally {
    await sim.close();
  }
});
