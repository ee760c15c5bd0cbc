/** VTTIF end to end in one process: hosts count, report, and the proxy infers a ring. */
import { assert, assertEquals } from "../support/assert.ts";
import { startOverlay } from "../support/sim.ts";
import { frame, vmMac } from "../support/frames.ts";
import { BROADCAST_MAC, formatMac } from "../../agent/switch/ethernet.ts";

Deno.test("sim vttif: VMs on 5 hosts talking in a ring are reported as a ring by the API", async () => {
  const fast = { updateInterval: 100, smoothing: 300, hysteresis: 300 };
  const n = 5;
  const sim = await startOverlay({ hosts: n, common: fast, device: { writtenCapacity: 100_000 } });
  const { devices: devs } = sim;
  try {
    // Traffic every 5 ms of clock time, for up to 8 s of it, until VTTIF says "ring".
    const traffic = sim.clock.every(5, () => {
      for (let i = 0; i < n; i++) {
        devs[i].inject(frame(vmMac(((i + 1) % n) + 1), vmMac(i + 1), 1000));
        devs[i].inject(frame(vmMac(((i + n - 1) % n) + 1), vmMac(i + 1), 1000));
        devs[i].inject(frame(BROADCAST_MAC, vmMac(i + 1), 60)); // ARP-like chatter
      }
      for (const d of devs) d.written.length = 0;
    });
    await sim.until(
      () => sim.proxy.vttif.vttif.current().classification.kind === "ring",
      "VTTIF to see the ring",
    );
    traffic.cancel();
    const topo: {
      classification: { kind: string; evidence: { vms: number } };
      events: unknown[];
      graph: { vms: string[] };
      groupBytesPerSec: Record<string, number>;
    } = await (await sim.apiFetch("/api/topology")).json();
    assertEquals(topo!.classification.kind, "ring", JSON.stringify(topo!.classification));
    assertEquals(topo!.classification.evidence.vms, n);
    assertEquals(topo!.events.length, 1, "declared once");
    assert(topo!.groupBytesPerSec[formatMac(vmMac(1))] > 0, "broadcast is counted apart");
    assertEquals(topo!.graph.vms.length, n, "and left out of the topology");
    assert(!topo!.graph.vms.includes("ff:ff:ff:ff:ff:ff"));
    const dot = await (await sim.apiFetch("/api/topology?format=dot")).text();
    assert(dot.includes(`"${formatMac(vmMac(1))}" -- "${formatMac(vmMac(2))}"`), dot);
  } finally {
    await sim.close();
  }
});
