/**
 * The migrator against a fake world: VMs on hosts in a map, a hook that moves them (or fails,
 * or never moves them), traffic that the test changes under it. Time is a ManualClock; the
 * migrator is ticked by hand.
 */
import { assert, assertEquals } from "../support/assert.ts";
import { ManualClock } from "../../agent/manual_clock.ts";
import type { PathEstimate } from "../../adapt/placement.ts";
import { type HostPair, hostPair } from "../../adapt/planner.ts";
import type { HookResult, MigrateHook } from "../../proxy/migrate_hook.ts";
import { Migrator, type MigratorOptions, type PlacementEvent } from "../../proxy/migrator.ts";
import { PlacementService } from "../../proxy/placement_service.ts";

const A = "02:00:00:00:00:01";
const B = "02:00:00:00:00:02";
const C = "02:00:00:00:00:03";
const SLOW: PathEstimate = { bandwidthBytesPerSec: 1e6, rttMs: 20 };

/** A world of three hosts; A-B talk heavily across h0|h1; h0 has room for one more VM. */
function world(options: MigratorOptions & { hook?: "moves" | "fails" | "stays" } = {}) {
  const clock = new ManualClock(1_000_000);
  const vmHost = new Map([[A, "h0"], [B, "h1"], [C, "h2"]]);
  let edges = [{ a: A, b: B, bytesPerSec: 5e5, weight: 1 }];
  const slots = new Map([["h0", 2], ["h1", 1], ["h2", 1]]);
  const placement = new PlacementService({
    graph: () => ({ vms: [A, B], edges, maxBytesPerSec: 5e5 }),
    vmHosts: () => vmHost,
    hosts: () => ["h0", "h1", "h2"],
    underlay: { pathCosts: () => (_pair: HostPair) => SLOW },
  }, { maxMoves: 4, minGain: 0.1, moveCost: 0.05, latencyWeight: 0 });
  for (const [h, n] of slots) placement.change({ slots: [h, n] });
  const calls: string[] = [];
  const pending: (() => void)[] = [];
  const hook: MigrateHook = {
    describe: "fake",
    run: (vm, from, to) => {
      calls.push(`${vm.slice(-2)} ${from}->${to}`);
      return new Promise<HookResult>((resolve) => {
        pending.push(() => {
          if (options.hook === "fails") return resolve({ ok: false, code: 3, output: "no" });
          if (options.hook !== "stays") vmHost.set(vm, to);
          resolve({ ok: true, code: 0, output: "" });
        });
      });
    },
  };
  const events: PlacementEvent[] = [];
  const migrator = new Migrator(
    {
      placement,
      hostOf: (vm) => vmHost.get(vm) ?? null,
      emit: (e) => events.push(e),
      clock,
    },
    { enabled: true, hook },
    { settleMs: 5000, arriveTimeoutMs: 3000, restMs: 60_000, ...options },
  );
  /** Ticks, finishing any hook call, for `ms` of clock time in 100 ms steps. */
  const run = async (ms: number) => {
    for (let t = 0; t < ms; t += 100) {
      migrator.tick(clock.now());
      while (pending.length) pending.shift()!();
      await clock.advance(100);
    }
  };
  return {
    clock,
    vmHost,
    placement,
    migrator,
    calls,
    events,
    run,
    setEdges: (e: typeof edges) => edges = e,
  };
}

Deno.test("migrator: a move that helps is kept, with its measured gain, and events", async () => {
  const w = world();
  await w.run(10_000);
  assertEquals(w.calls, ["02 h1->h0"], "one move: B joins A on h0");
  const [m] = w.migrator.history;
  assertEquals([m.outcome, m.vm, m.from, m.to], ["kept", B, "h1", "h0"]);
  assertEquals(m.costBefore, 0.5);
  assertEquals(m.costAfter, 0);
  assertEquals(m.measuredGain, 0.5);
  assert(m.arrivedAt! - m.startedAt < 500 && m.endedAt! - m.arrivedAt! >= 5000, "settled first");
  assertEquals(w.events.map((e) => e.phase), ["started", "arrived", "kept"]);
  assert(w.events[0].reason.includes("same-host"), w.events[0].reason);
  await w.run(30_000);
  assertEquals(w.calls.length, 1, "nothing more to gain: no more moves");
});

Deno.test("migrator: a failed hook rests the VM, and the next plan leaves it alone", async () => {
  const w = world({ hook: "fails", restMs: 20_000 });
  await w.run(3000);
  assertEquals(w.calls, ["02 h1->h0"]);
  assertEquals(w.migrator.history[0].outcome, "failed");
  assert(w.migrator.history[0].why.includes("exit 3"), w.migrator.history[0].why);
  assertEquals(w.migrator.resting(w.clock.now()), [B]);
  // While B rests, the planner finds nothing else worth a move (A cannot go to full h1).
  await w.run(15_000);
  assertEquals(w.calls.length, 1, "no retry while resting");
  await w.run(15_000);
  assertEquals(w.calls.length, 2, "tried again once the rest was over");
  assertEquals(w.migrator.history[1].outcome, "failed");
  const second = w.migrator.view(w.clock.now()).resting[0];
  assert(second.until - w.migrator.history[1].endedAt! === 40_000, "the rest doubles");
});

Deno.test("migrator: a VM the overlay never sees on its new host fails the move", async () => {
  const w = world({ hook: "stays" });
  await w.run(5000);
  const [m] = w.migrator.history;
  assertEquals(m.outcome, "failed");
  assert(m.why.includes("did not see"), m.why);
  assertEquals(m.hookDoneAt! + 3000 <= m.endedAt!, true, "waited arriveTimeout after the hook");
});

Deno.test("migrator: a move that did not help is moved back, and the VM rests", async () => {
  const w = world();
  await w.run(1000);
  assertEquals(w.vmHost.get(B), "h0", "moved");
  // Meanwhile the application changed: B now talks to C on h2, more than A-B ever did.
  w.setEdges([{ a: B, b: C, bytesPerSec: 9e5, weight: 1 }]);
  await w.run(8000);
  assertEquals(w.calls, ["02 h1->h0", "02 h0->h1"]);
  const [m] = w.migrator.history;
  assertEquals(m.outcome, "reverted");
  assert(m.why.includes("did not help"), m.why);
  assertEquals(w.vmHost.get(B), "h1", "back where it was");
  assertEquals(w.events.map((e) => e.phase), ["started", "arrived", "reverting", "reverted"]);
  assertEquals(w.migrator.resting(w.clock.now()), [B]);
});

Deno.test("migrator: never a pinned VM, never two at once, nothing when off", async () => {
  const w = world();
  w.placement.change({ pin: B });
  await w.run(5000);
  assertEquals(w.calls, [], "B pinned, and A cannot go to full h1");
  w.placement.change({ unpin: B });
  w.migrator.enabled = false;
  w.migrator.replan();
  await w.run(5000);
  assertEquals(w.calls, [], "off: advice only");
  // Two moves wanted (C also talks to A; h0 has room for both): one at a time.
  w.migrator.enabled = true;
  w.placement.change({ slots: ["h0", 3] });
  w.setEdges([
    { a: A, b: B, bytesPerSec: 5e5, weight: 1 },
    { a: A, b: C, bytesPerSec: 4e5, weight: 0.8 },
  ]);
  w.migrator.replan();
  w.migrator.tick(w.clock.now());
  w.migrator.tick(w.clock.now());
  assertEquals(w.calls.length, 1, "the second waits for the first");
  await w.run(20_000);
  assertEquals(w.calls, ["02 h1->h0", "03 h2->h0"]);
  assert(w.migrator.history.every((m) => m.outcome === "kept"));
  assertEquals(hostPair("h0", "h1"), "h0|h1");
});
