/**
 * ARP suppression end to end (in-process, memory network): once a VM has claimed its address,
 * a request for it from another host is answered by the proxy and reaches no other host; an
 * address nobody claimed is still flooded. Both are counted in /metrics.
 */
import { assert, assertEquals } from "../support/assert.ts";
import { startOverlay } from "../support/sim.ts";
import { vmMac } from "../support/frames.ts";
import { arp as arpPacket } from "../support/neighbour_frames.ts";
import { dstMac, srcMac } from "../../agent/switch/ethernet.ts";
import { VNET_HDR_LEN } from "../../agent/packet/layout.ts";

/** An ARP frame as a VM puts it on the wire (MemoryDevice.inject takes no virtio header). */
const arp = (o: Parameters<typeof arpPacket>[0]) => arpPacket(o).slice(VNET_HDR_LEN);

Deno.test("sim neighbours: ARP for a claimed address is answered by the proxy, not flooded", async () => {
  const sim = await startOverlay({ hosts: 4 });
  const [d0, d1, d2, d3] = sim.devices;
  try {
    // VM 2 (behind h1) announces 10.9.0.2 (a gratuitous ARP: flooded, and learned).
    d1.inject(arp({ op: 1, sha: vmMac(2), spa: "10.9.0.2", tpa: "10.9.0.2" }));
    await sim.until(() => d0.written.length === 1 && d3.written.length === 1, "the announcement");
    for (const d of sim.devices) d.written.length = 0;

    // VM 1 (behind h0) asks who has 10.9.0.2: the proxy answers, h1..h3 see nothing.
    d0.inject(arp({ op: 1, sha: vmMac(1), spa: "10.9.0.1", tpa: "10.9.0.2" }));
    await sim.until(() => d0.written.length === 1, "the proxy's answer at h0");
    const reply = d0.written[0];
    assertEquals(dstMac(reply), vmMac(1));
    assertEquals(srcMac(reply), vmMac(2), "answered on behalf of the owner");
    const arpAt = VNET_HDR_LEN + 14;
    assertEquals(reply[arpAt + 7], 2, "an ARP reply");
    assertEquals([...reply.subarray(arpAt + 14, arpAt + 18)], [10, 9, 0, 2]);
    await sim.pass(100);
    assertEquals([d1, d2, d3].map((d) => d.written.length), [0, 0, 0], "nothing flooded");

    // An address nobody claimed is flooded as before.
    d0.inject(arp({ op: 1, sha: vmMac(1), spa: "10.9.0.1", tpa: "10.9.0.77" }));
    await sim.until(() => d2.written.length === 1 && d3.written.length === 1, "the flood");

    const metrics = await (await sim.apiFetch("/metrics")).text();
    assert(/^vnet_neighbour_suppressed_total\{reason="answered"\} 1$/m.test(metrics), metrics);
    assert(/^vnet_neighbour_floods_total\{reason="unknown"\} 1$/m.test(metrics), metrics);
    assert(/^vnet_neighbours 2$/m.test(metrics), "10.9.0.2 and 10.9.0.1 are known");
  } finally {
    await sim.close();
  }
});

Deno.test("sim neighbours: with suppression off, the proxy floods every request", async () => {
  const sim = await startOverlay({ hosts: 3, proxy: { neighbourSuppression: false } });
  const [d0, d1, d2] = sim.devices;
  try {
    d1.inject(arp({ op: 1, sha: vmMac(2), spa: "10.9.0.2", tpa: "10.9.0.2" }));
    await sim.until(() => d0.written.length === 1, "the announcement");
    d0.inject(arp({ op: 1, sha: vmMac(1), spa: "10.9.0.1", tpa: "10.9.0.2" }));
    await sim.until(
      () => d1.written.length === 1 && d2.written.length === 2,
      "the request flooded",
    );
    assertEquals(sim.proxy.switch.neighbours, null);
  } finally {
    await sim.close();
  }
});
