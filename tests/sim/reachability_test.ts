/**
 * Reachability in the in-process overlay: the proxy reaches each host at its fast-path
 * listener before any peer is sent there, and an advertised address where the host did not
 * answer with its own key is never handed out.
 */
import { assert, assertEquals } from "../support/assert.ts";
import { startOverlay } from "../support/sim.ts";
import { frame, vmMac } from "../support/frames.ts";
import { BROADCAST_MAC } from "../../agent/switch/ethernet.ts";

Deno.test("sim reachability: checked addresses only; a false --advertise is ignored", async () => {
  const fast = { updateInterval: 100, smoothing: 300, hysteresis: 300 };
  const sim = await startOverlay({
    hosts: 2,
    common: fast,
    // h1 claims a port forward that does not lead to it (nothing listens at 10.0.0.99).
    host: (i) => (i === 1 ? { advertise: { hostname: "10.0.0.99", port: 17810 } } : {}),
  });
  try {
    const { proxy, hosts, devices } = sim;
    await sim.until(
      () => hosts.every((h) => proxy.adapt.reachOf(h.name)?.state === "reachable"),
      "both hosts checked",
    );
    const h1 = proxy.adapt.reachOf("h1")!;
    assertEquals(h1.listen, `10.0.0.3:${hosts[1].fastPaths.address!.port}`);
    assert(h1.reason.includes("joined from"), h1.reason);
    assertEquals(hosts.map((h) => h.fastPaths.probes), [1, 1], "each answered the proxy once");
    // Traffic between their VMs: a fast path, h0 dialing h1 at the checked address.
    devices.forEach((d, i) => d.inject(frame(BROADCAST_MAC, vmMac(i + 1))));
    let on = true;
    const talk = (async () => {
      while (on) {
        devices[0].inject(frame(vmMac(2), vmMac(1), 1000));
        devices[1].inject(frame(vmMac(1), vmMac(2), 1000));
        await sim.pass(5);
      }
    })();
    await sim.until(() => proxy.adapt.pairs.get("h0|h1")?.phase === "up", "the fast path");
    on = false;
    await talk;
    const why = proxy.adapt.explain("h0|h1", sim.clock.now());
    assertEquals(why.origin, { how: "dial", dialer: "h0" });
    assert(why.reason.startsWith("direct: h0 dialed h1"), why.reason);
  } finally {
    await sim.close();
  }
});
