/**
 * VM migration in one process: a VM that talks over a fast path moves to another host; the
 * first frame from there moves it, its peer's traffic follows it, and a third host that then
 * claims its MAC is refused while the VM keeps working. How fast the overlay follows is
 * measured by bench/migration_bench.ts; here the times are only printed.
 */
import { assert, assertEquals } from "../support/assert.ts";
import { startOverlay } from "../support/sim.ts";
import { frame, vmMac } from "../support/frames.ts";
import type { MemoryDevice } from "../../agent/device/memory_device.ts";
import type { TrafficCounter } from "../../agent/traffic/counter.ts";
import { BROADCAST_MAC, dstMac, formatMac } from "../../agent/switch/ethernet.ts";

Deno.test("sim migration: the overlay follows a moved VM; a claim on a live VM is refused", async () => {
  const fast = { updateInterval: 100, smoothing: 300, hysteresis: 300, moveQuiet: 100 };
  const sim = await startOverlay({
    hosts: 3,
    common: fast,
    device: { writtenCapacity: 1_000_000 },
  });
  const { proxy, hosts, devices: devs, until, clock } = sim;
  const M = vmMac(1); // the VM that moves, first on h0, then on h1
  const X = vmMac(3); // its peer on h2
  let traffic = { cancel() {} };
  const received = (d: MemoryDevice, mac: number) =>
    d.written.filter((p) => dstMac(p) === mac).length;
  try {
    devs[0].inject(frame(BROADCAST_MAC, M));
    devs[2].inject(frame(BROADCAST_MAC, X));
    traffic = clock.every(5, () => {
      devs[0].inject(frame(X, M, 1000));
      devs[2].inject(frame(M, X, 1000));
    });
    await until(() => hosts[2].fastPaths.peers().includes("h0"), "a fast path h0-h2");
    await until(
      () => hosts[2].switch.rules.list().some((r) => r.target === "peer:h0"),
      "rules towards h0",
    );

    // The VM stops at h0. The proxy lets another host have M only once M has been quiet
    // behind h0 for move-quiet, and what keeps M fresh there is h0's word: M's frames, and
    // h0's traffic reports, which name M while h0 has counted frames of M since its last one.
    // So wait until h0 has read every frame of M and reported the last of them (nothing left
    // counted); then send a frame from another VM of h0, which h0's uplink delivers after that
    // report; once the proxy has learned that VM, nothing more can refresh M, and only then
    // do we wait for M's last sighting at the proxy to be older than move-quiet.
    traffic.cancel();
    const counted = hosts[0].switch.observer as TrafficCounter;
    await until(() => devs[0].queued === 0 && counted.pairs === 0, "h0 to report M's last frames");
    const marker = vmMac(2);
    devs[0].inject(frame(BROADCAST_MAC, marker));
    await until(() => proxy.switch.macs.get(marker)?.port === "host:h0", "h0's marker VM learned");
    assertEquals(proxy.switch.macs.get(M)?.port, "host:h0");
    await until(
      () => clock.now() - proxy.switch.macs.get(M)!.lastSeen > fast.moveQuiet,
      "M quiet at the proxy for longer than move-quiet",
    );

    // M wakes up at h1 and announces itself: that first frame moves it, nothing is refused.
    const before = received(devs[1], M);
    const spoofedBefore = proxy.switch.drops.spoofed;
    devs[1].inject(frame(BROADCAST_MAC, M, 46, 0x8035)); // RARP, as QEMU sends after migration
    traffic = clock.every(5, () => {
      devs[1].inject(frame(X, M, 1000));
      devs[2].inject(frame(M, X, 1000));
    });
    const movedAt = clock.now();
    await until(() => received(devs[1], M) - before > 10, "X's frames reaching M on h1");
    console.log(`X's frames reached M on h1 ${clock.now() - movedAt} ms after its RARP`);
    assertEquals(proxy.switch.macs.lookup(M, clock.now()), "host:h1");
    assertEquals(proxy.switch.drops.spoofed, spoofedBefore, "no frame of M from h1 refused");
    await until(() => proxy.adapt.moves.length === 1, "the move measured");
    console.log(`forwarding updated on every host in ${proxy.adapt.moves[0].ms} ms`);
    assert(!hosts[2].switch.rules.list().some((r) => r.target === "peer:h0" && r.dst === M));
    assertEquals(hosts[0].switch.macs.get(M), undefined, "h0 forgot the VM");
    const vms = await (await sim.apiFetch("/api/vms")).json();
    assertEquals(vms.find((v: { mac: string }) => v.mac === formatMac(M)).host, "h1");
    const metrics = await (await sim.apiFetch("/metrics")).text();
    assert(/^vnet_vm_moves_total 1$/m.test(metrics), "the move is counted in /metrics");
    const moved = proxy.events.recent().find((e) => e.type === "vm" && e.change === "moved");
    assertEquals(moved?.to, "host:h1", "the move is an event");

    // h0 now claims M while it is alive on h1: refused, and M keeps receiving on h1.
    const spoofed = proxy.switch.drops.spoofed;
    devs[0].inject(frame(BROADCAST_MAC, M));
    await until(() => proxy.switch.drops.spoofed > spoofed, "the claim refused");
    const still = received(devs[1], M);
    await until(() => received(devs[1], M) - still > 10, "M still receiving on h1");
    assertEquals(proxy.switch.macs.lookup(M, clock.now()), "host:h1");
  } finally {
    traffic.cancel();
    await sim.close();
  }
});
