/**
 * Placement in one process: three hosts on the memory network, VMs A (h0) and B (h1) talking
 * heavily, C alone on h2; h0 has a free slot (`--vm-slots`, sent in HELLO). The proxy learns
 * the underlay from its star links and the VM traffic, advises moving B next to A, refuses to
 * while B is pinned, and, with migration on, moves B through a fake hook that does what a
 * hypervisor does in the sim: B falls silent on h1 and its frames start arriving from h0.
 */
import { assert, assertEquals } from "../support/assert.ts";
import { startOverlay } from "../support/sim.ts";
import { frame, vmMac } from "../support/frames.ts";
import { BROADCAST_MAC, formatMac } from "../../agent/switch/ethernet.ts";
import type { MigrateHook } from "../../proxy/migrate_hook.ts";
import type { PlacementReply, UnderlayReply } from "../../proxy/api_types.ts";
import { runCommand } from "../../proxy/cli/commands.ts";
import { testConfig } from "../support/config.ts";

const FAST = { updateInterval: 100, smoothing: 300, hysteresis: 300, moveQuiet: 100 };

Deno.test("sim placement: underlay, advice, pins, and a move through the hook that helps", async () => {
  const sim = await startOverlay({
    hosts: 3,
    common: FAST,
    proxy: { migrateSettle: 1000, maxMoves: 4, minGain: 0.1 },
    host: (i) => ({ vmSlots: [2, 1, 1][i] }),
    device: { writtenCapacity: 100_000 },
  });
  const { proxy, devices: devs, until, clock } = sim;
  const [A, B, C] = [vmMac(1), vmMac(2), vmMac(3)];
  const b = formatMac(B);
  const where = new Map([[A, 0], [B, 1]]);
  const get = async <T>(path: string) => (await (await sim.apiFetch(path)).json()) as T;
  const put = async (path: string, body: unknown) =>
    await (await sim.apiFetch(path, { method: "PUT", body: JSON.stringify(body) })).json();
  const traffic = clock.every(5, () => {
    const [ha, hb] = [where.get(A)!, where.get(B)!];
    if (ha >= 0 && hb >= 0 && ha !== hb) {
      devs[ha].inject(frame(B, A, 1000));
      devs[hb].inject(frame(A, B, 1000));
    }
  });
  try {
    devs[2].inject(frame(BROADCAST_MAC, C));
    await until(() => proxy.placement.service.plan(clock.now()).moves.length > 0, "advice", 20_000);

    // h2's star link is quiet: it pings, and has an RTT; h0's carries A's traffic.
    await until(
      () => proxy.placement.underlay.book.estimate("(proxy)", "h2", clock.now())?.rttMs != null,
      "h2's RTT",
    );
    const u = await get<UnderlayReply>("/api/underlay");
    const star = u.pairs.find((p) => p.pair === "(proxy)|h0")!;
    assert(star.bandwidthBytesPerSec! > 100_000, JSON.stringify(star));
    assert(u.pairs.some((p) => p.pair === "h0|h1" && p.bandwidthBytesPerSec! > 100_000));
    // h2 carried nothing: its pairs are unknown, and no plan puts traffic on them.
    assert(u.planned.some((p) => p.pair === "h0|h2" && p.via === "unknown"), "not priced");
    assert(u.unmeasured.includes("h0|h2"), "listed as unmeasured");

    let advice = await get<PlacementReply>("/api/placement");
    assertEquals(advice.hosts.map((h) => `${h.host}:${h.slots}:${h.source}:${h.vms}`), [
      "h0:2:host:1",
      "h1:1:host:1",
      "h2:1:host:0",
    ]);
    assertEquals(advice.plan.moves.map((m) => `${m.vm} ${m.from}->${m.to}`), [`${b} h1->h0`]);
    assert(advice.plan.moves[0].reason.includes("same-host"), advice.plan.moves[0].reason);
    assertEquals(advice.migration.enabled, false, "advice only by default");

    // C only broadcast: not a VM that takes a slot. Pinned, B stays; A cannot go to full h1,
    // nor to h2, whose path to h1 nothing has measured: no plan, and the reason says why.
    advice = await put("/api/placement", { pin: b });
    assertEquals(advice.plan.moves, []);
    assert(advice.plan.reason.includes("1 of 2 VMs pinned"), advice.plan.reason);
    await put("/api/placement", { unpin: b });

    // Without a hook, migration cannot be turned on: advice only.
    const refused = await sim.apiFetch("/api/adapt", {
      method: "PUT",
      body: JSON.stringify({ migrate: true }),
    });
    assertEquals(refused.status, 400);
    assert((await refused.json()).error.includes("--migrate-hook"));

    // The hook: B stops on h1; once h1 no longer hears it, it starts on h0.
    const calls: string[] = [];
    const hook: MigrateHook = {
      describe: "sim",
      run: async (vm, from, to) => {
        calls.push(`${vm} ${from} ${to}`);
        where.set(B, -1);
        await clock.sleep(3 * FAST.moveQuiet);
        where.set(B, Number(to.slice(1)));
        devs[where.get(B)!].inject(frame(BROADCAST_MAC, B, 46, 0x8035));
        return { ok: true, code: 0, output: "" };
      },
    };
    proxy.placement.migrator.hook = hook;
    const adapt = await put("/api/adapt", { migrate: true });
    assertEquals(adapt.migrate, true);
    await until(() => proxy.placement.migrator.history[0]?.outcome != null, "the move", 20_000);
    const [m] = proxy.placement.migrator.history;
    assertEquals(calls, [`${b} h1 h0`], "exactly one move, through the hook");
    assertEquals([m.vm, m.from, m.to, m.outcome], [b, "h1", "h0", "kept"]);
    assert(m.measuredGain! > 0 && m.costAfter! < m.costBefore, JSON.stringify(m));
    assertEquals(proxy.switch.macs.lookup(B, clock.now()), "host:h0");
    const steps = proxy.events.recent().filter((e) => e.type === "placement");
    assertEquals(steps.map((e) => e.type === "placement" && e.phase), [
      "started",
      "arrived",
      "kept",
    ]);

    const metrics = await (await sim.apiFetch("/metrics")).text();
    assert(/^vnet_placement_moves\{outcome="kept"\} 1$/m.test(metrics), "counted in /metrics");
    assert(/^vnet_underlay_rtt_ms\{pair="\(proxy\)\|h2"\} /m.test(metrics), "RTT in /metrics");

    // The CLI prints both views.
    const lines: string[] = [];
    const stateDir = await Deno.makeTempDir({ prefix: "vnet-cli-" });
    await Deno.writeTextFile(`${stateDir}/api.token`, sim.apiToken);
    const cli = (command: string[]) =>
      runCommand({
        config: testConfig({ api: proxy.apiAddress, stateDir }),
        command,
        help: false,
        version: false,
        json: false,
        dot: false,
        configFile: null,
      }, (s) => lines.push(s));
    assertEquals(await cli(["advise"]), 0);
    assert(lines.join("\n").includes("kept"), lines.join("\n"));
    assertEquals(await cli(["underlay"]), 0);
    assert(lines.join("\n").includes("(proxy)|h1"), lines.join("\n"));
  } finally {
    traffic.cancel();
    await sim.close();
  }
});
