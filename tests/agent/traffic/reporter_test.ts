/**
 * Traffic reports leave only for intervals in which something was counted, and each covers
 * the one interval since the check before it.
 */
import { assertEquals } from "../../support/assert.ts";
import { ManualClock } from "../../../agent/manual_clock.ts";
import { TrafficCounter } from "../../../agent/traffic/counter.ts";
import { reportTraffic } from "../../../agent/traffic/reporter.ts";
import type { HostMessage } from "../../../agent/control/messages.ts";

Deno.test("reporter: an idle host sends nothing; counted traffic leaves with the next interval", async () => {
  const clock = new ManualClock();
  const counter = new TrafficCounter({ maxPairs: 100 });
  const sent: HostMessage[] = [];
  const link = { sendControl: (m: HostMessage) => (sent.push(m), true) };
  const stop = new AbortController();
  const running = reportTraffic(counter, { current: () => link, reportEveryMs: 1000 }, {
    clock,
    signal: stop.signal,
  });
  try {
    await clock.advance(30_000);
    assertEquals(sent, [], "thirty idle intervals, no report");
    assertEquals(counter.empty, true);
    await clock.advance(400);
    counter.observe(0x020000000001, 0x020000000002, 1500);
    assertEquals(counter.empty, false);
    await clock.advance(600);
    assertEquals(sent.length, 1);
    const r = sent[0] as Extract<HostMessage, { type: "traffic" }>;
    assertEquals(r.intervalMs, 1000, "one interval, not the thirty before");
    assertEquals(r.pairs, [["02:00:00:00:00:01", "02:00:00:00:00:02", 1500, 1]]);
    await clock.advance(5_000);
    assertEquals(sent.length, 1, "quiet again");
  } finally {
    stop.abort();
    await running;
  }
});
