import { assertEquals } from "../support/assert.ts";
import {
  AdmissionFirst,
  CONCURRENCY,
  MAX_DEFER_MS,
  RECHECK_BUSY_MS,
} from "../../proxy/admission_first.ts";
import { ManualClock } from "../../agent/manual_clock.ts";

Deno.test("admission first: a check waits while hosts queue, runs as the queue empties", async () => {
  const clock = new ManualClock(0);
  let queue = 3;
  let ranAt: number | null = null;
  const done = new AdmissionFirst(() => queue > 0, clock).run(() => {
    ranAt = clock.now();
    return Promise.resolve("checked");
  });
  for (; queue > 0; queue--) await clock.advance(1_000);
  await clock.advance(RECHECK_BUSY_MS);
  assertEquals(await done, "checked");
  assertEquals(ranAt! >= 3_000 && ranAt! <= 3_000 + RECHECK_BUSY_MS, true, `ran at ${ranAt}`);
});

Deno.test("admission first: an idle proxy checks at once, a queue that never empties only delays", async () => {
  const clock = new ManualClock(0);
  const gate = new AdmissionFirst(() => false, clock);
  let ran = 0;
  await gate.run(() => Promise.resolve(ran++));
  assertEquals(ran, 1, "no wait when nobody queues");
  const late = new AdmissionFirst(() => true, clock).run(() => Promise.resolve(ran++));
  await clock.advance(MAX_DEFER_MS - RECHECK_BUSY_MS);
  assertEquals(ran, 1, "still deferred");
  await clock.advance(2 * RECHECK_BUSY_MS);
  await late;
  assertEquals(ran, 2, "after the longest deferral it runs anyway");
});

Deno.test("admission first: checks that waited run a few at a time, not all at once", async () => {
  const clock = new ManualClock(0);
  let busy = true;
  const gate = new AdmissionFirst(() => busy, clock);
  const release: (() => void)[] = [];
  let started = 0;
  const all = Array.from({ length: 100 }, () =>
    gate.run(() => {
      started++;
      return new Promise<void>((r) => release.push(r));
    }));
  await clock.advance(1_000);
  assertEquals(started, 0);
  busy = false;
  await clock.advance(RECHECK_BUSY_MS);
  assertEquals(started, CONCURRENCY, "the first slots' worth");
  assertEquals(gate.waiting, 100 - CONCURRENCY);
  while (release.length) {
    release.shift()!();
    await clock.advance(0);
  }
  await Promise.all(all);
  assertEquals(started, 100);
  assertEquals(gate.running, 0);
});
