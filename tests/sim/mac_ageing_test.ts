/**
 * A VM's MAC that ages out of the proxy's table is withdrawn from the fast-path peers of the
 * host it was behind, as a move withdraws it: otherwise the old host could go on sending that
 * source over its fast paths after the VM reappeared behind another host.
 */
import { assert, assertEquals } from "../support/assert.ts";
import { startOverlay } from "../support/sim.ts";
import { BROADCAST_MAC, dstMac, srcMac } from "../../agent/switch/ethernet.ts";
import { frame, packet, vmMac } from "../support/frames.ts";

const FAST = { keepalive: 100, deadAfter: 600, reconnectMax: 300, handshakeTimeout: 1000 };

Deno.test("sim mac ageing: a MAC swept from the proxy's table is removed from the old host's fast-path peers", async () => {
  const macAge = 1000;
  const sim = await startOverlay({
    hosts: 3,
    common: { ...FAST, updateInterval: 100, smoothing: 300, hysteresis: 300, macAge },
    // Three MACs fill the table, so the next new one sweeps the aged ones out.
    proxy: { maxMacs: 3 },
    device: { writtenCapacity: 100_000 },
  });
  const [d0, d1, d2] = sim.devices;
  const [h0, , h2] = sim.hosts;
  const M = vmMac(1); // on h0, falls silent, ages out, reappears on h1
  const K = vmMac(2); // on h0, keeps the fast path h0-h2 busy
  const X = vmMac(3); // on h2
  const traffic = sim.clock.every(5, () => {
    d0.inject(frame(X, K, 1000));
    d2.inject(frame(K, X, 1000));
  });
  try {
    for (const [d, mac] of [[d0, M], [d0, K], [d2, X]] as const) {
      d.inject(frame(BROADCAST_MAC, mac));
    }
    await sim.until(() => h2.fastPaths.link("h0") !== undefined, "a fast path h0-h2");
    await sim.until(() => h2.fastPaths.allows("peer:h0", M), "h2 told M is behind h0");

    // M falls silent for longer than mac-age; a new VM on h1 fills the table: M is swept.
    const aged = (mac: number) =>
      sim.clock.now() - (sim.proxy.switch.macs.get(mac)?.lastSeen ?? -Infinity) > macAge;
    await sim.until(() => aged(M), "M aged at the proxy", 5000);
    d1.inject(frame(BROADCAST_MAC, vmMac(5)));
    await sim.until(() => sim.proxy.switch.macs.get(M) === undefined, "M swept");
    // M reappears behind h1 (once the silent VM 5 has aged, to make room): new to the
    // proxy, so no move (and no move's remove) happens.
    await sim.until(() => aged(vmMac(5)), "VM 5 aged at the proxy", 5000);
    d1.inject(frame(BROADCAST_MAC, M));
    await sim.until(() => sim.proxy.switch.macs.get(M)?.port === "host:h1", "M learned on h1");

    await sim.until(() => !h2.fastPaths.allows("peer:h0", M), "h2 told M left h0");
    assert(h2.fastPaths.link("h0") !== undefined, "the fast path h0-h2 stayed up");
    // h0 sends M's address over its fast path: h2 drops it as spoofed, VM X never sees it.
    const spoofed = h2.switch.drops.spoofed;
    h0.fastPaths.link("h2")!.send(packet(X, M));
    await sim.until(() => h2.switch.drops.spoofed === spoofed + 1, "the stale source dropped");
    assertEquals(d2.written.filter((p) => srcMac(p) === M && dstMac(p) === X).length, 0);
    assert(d2.written.some((p) => srcMac(p) === K), "K's traffic kept flowing");
  } finally {
    traffic.cancel();
    await sim.close();
  }
});
