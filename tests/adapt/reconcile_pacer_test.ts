import assert from "node:assert/strict";
import { ReconcilePacer, SHARE_INVERSE } from "../../adapt/reconcile_pacer.ts";
import { ManualClock } from "../../agent/manual_clock.ts";

/** A pacer over a run that "costs" `costMs` of a fake CPU clock, and its run times. */
function pacer(clock: ManualClock, costMs: number) {
  let cpu = 0;
  const runs: number[] = [];
  const p = new ReconcilePacer(
    () => {
      runs.push(clock.now());
      cpu += costMs;
    },
    clock,
    () => cpu,
  );
  return { p, runs };
}

Deno.test("pacer: cheap runs follow every request at once", () => {
  const clock = new ManualClock(1_000);
  const { p, runs } = pacer(clock, 0.01);
  for (let i = 0; i < 5; i++) p.request();
  assert.deepEqual(runs, [1_000, 1_000, 1_000, 1_000, 1_000]);
  assert.equal(p.merged, 0);
});

Deno.test("pacer: costly runs merge a flood of requests into one per gap", async () => {
  const clock = new ManualClock(1_000);
  const { p, runs } = pacer(clock, 3);
  const gap = SHARE_INVERSE * 3;
  p.request(); // at once
  for (let i = 0; i < 100; i++) p.request(); // one deferred run for all of them
  assert.deepEqual(runs, [1_000]);
  assert.equal(p.merged, 100);
  await clock.advance(gap - 1);
  assert.equal(runs.length, 1, "not before the gap");
  await clock.advance(1);
  assert.deepEqual(runs, [1_000, 1_000 + gap]);
  await clock.advance(gap * 5);
  assert.equal(runs.length, 2, "no run without a request");
  p.request();
  assert.equal(runs.length, 3, "a request after a quiet gap runs at once");
});

Deno.test("pacer: a run that throws still paces the next, and cancel drops a deferred run", async () => {
  const clock = new ManualClock(0);
  let cpu = 0;
  let calls = 0;
  const p = new ReconcilePacer(
    () => {
      calls++;
      cpu += 2;
      throw new Error("boom");
    },
    clock,
    () => cpu,
  );
  assert.throws(() => p.request(), /boom/);
  p.request();
  assert.equal(calls, 1);
  p.cancel();
  await clock.advance(1_000);
  assert.equal(calls, 1);
});
