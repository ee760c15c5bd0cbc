/**
 * Active underlay probes end to end in one process: three hosts on the memory network; VM A
 * on h0 and B on h1 talk, but the operator forbids h0|h1 a fast path, so their traffic takes
 * only the star and the pair has no RTT of its own. The proxy asks h0 (h1's listener it
 * reached) to time a round trip to h1; h1's fast-path listener answers the probe as it does the
 * proxy's, without a link; h0 answers probe-result, and placement prices h0|h1 by the probe
 * (`rttVia: "probe"` in /api/underlay) instead of its two star links' sum. A probe-result
 * nobody asked for is refused and counted, and its sender keeps its star link.
 */
import { assert, assertEquals } from "../support/assert.ts";
import { startOverlay } from "../support/sim.ts";
import { frame, vmMac } from "../support/frames.ts";
import { BROADCAST_MAC } from "../../agent/switch/ethernet.ts";
import type { UnderlayReply } from "../../proxy/api_types.ts";
import { printUnderlay } from "../../proxy/cli/print_placement.ts";
import { PROBE_INTERVAL_MS } from "../../proxy/underlay_probes.ts";

const FAST = { updateInterval: 100, smoothing: 300, hysteresis: 300, moveQuiet: 100 };

Deno.test("sim underlay probe: a pair talking only over the star gets its RTT from a probe", async () => {
  const sim = await startOverlay({
    hosts: 3,
    common: FAST,
    proxy: { forbid: [["h0", "h1"]] },
    device: { writtenCapacity: 100_000 },
  });
  const { proxy, hosts, devices: devs, until, clock } = sim;
  const [A, B, C] = [vmMac(1), vmMac(2), vmMac(3)];
  const traffic = clock.every(5, () => {
    devs[0].inject(frame(B, A, 1000));
    devs[1].inject(frame(A, B, 1000));
  });
  const underlay = proxy.placement.underlay;
  const get = async () => (await (await sim.apiFetch("/api/underlay")).json()) as UnderlayReply;
  try {
    devs[2].inject(frame(BROADCAST_MAC, C));
    await until(
      () => underlay.book.estimate("h0", "h1", clock.now())?.rttSource === "probe",
      "h0|h1 probed",
      4 * PROBE_INTERVAL_MS,
    );
    assertEquals(proxy.adapt.pairs.get("h0|h1")?.phase ?? "none", "none", "forbidden: no link");
    assertEquals(hosts[0].fastPaths.peers(), [], "the probe opened no fast path");
    assert(hosts[1].fastPaths.probes >= 1, "h1's listener answered a probe");

    const u = await get();
    const planned = u.planned.find((p) => p.pair === "h0|h1")!;
    const measured = u.pairs.find((p) => p.pair === "h0|h1")!;
    assertEquals(planned.rttVia, "probe");
    assertEquals(planned.rttMs, measured.rttMs, "the probed RTT, not a star sum");
    assertEquals(measured.rttSource, "probe");
    assert(u.probes.sent >= 1 && u.probes.answered >= 1, JSON.stringify(u.probes));
    assertEquals(u.probes.refused, { "unasked": 0, "late": 0, "out of range": 0 });
    // h2's VM only broadcast: its pairs matter to no placement and are never probed.
    assert(u.planned.find((p) => p.pair === "h0|h2")!.rttVia !== "probe", "h0|h2 not probed");
    assertEquals(underlay.book.estimate("h0", "h2", clock.now())?.rttMs ?? null, null);
    const lines: string[] = [];
    printUnderlay(u, (s) => lines.push(s));
    const row = lines.join("\n").split("\n").find((l) =>
      l.startsWith("h0|h1") && l.includes("probe")
    );
    assert(row !== undefined, lines.join("\n"));
    assert(lines.join("\n").includes("RTT probes (pairs without a fast path)"), lines.join("\n"));

    // h2 answers a probe nobody asked it for: refused, counted, and h2 stays connected.
    hosts[2].uplink()!.sendControl({ type: "probe-result", peer: "h0", rttMs: 0.001 });
    await until(() => underlay.probes.counts().refused.unasked === 1, "h2's answer refused");
    assertEquals(underlay.book.estimate("h0", "h2", clock.now())?.rttMs ?? null, null, "not taken");
    assert(proxy.hosts().has("h2"), "h2 is still connected");

    const metrics = await (await sim.apiFetch("/metrics")).text();
    assert(
      /^vnet_underlay_probe_results_refused_total\{reason="unasked"\} 1$/m.test(metrics),
      "the refusal in /metrics",
    );
    assert(/^vnet_underlay_probes_total\{outcome="answered"\} [1-9]/m.test(metrics), metrics);
  } finally {
    traffic.cancel();
    await sim.close();
  }
});
