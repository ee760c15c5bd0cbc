/**
 * What of a host's traffic report reaches VTTIF: only pairs whose source the reporter owns and
 * whose destination the proxy knows, counts clamped to what a link could carry since the last
 * report, at most one report per half interval; the rest counted by reason.
 */
import { assertEquals } from "../support/assert.ts";
import { MAX_LINK_BYTES_PER_MS, ReportGate } from "../../proxy/report_gate.ts";
import type { TrafficReport } from "../../agent/traffic/counter.ts";

const OWNERS: Record<string, string> = { a1: "h1", a2: "h1", b1: "h2", lan: "" };
const facts = {
  ownerOf: (m: string) => OWNERS[m] || null,
  known: (m: string) => m in OWNERS,
};

function report(pairs: TrafficReport["pairs"], group: TrafficReport["group"] = []): TrafficReport {
  return { type: "traffic", intervalMs: 1000, pairs, group, overflowFrames: 0 };
}

Deno.test("report gate: foreign sources and unknown destinations are refused, the rest kept", () => {
  const gate = new ReportGate(1000);
  gate.joined("h1", 0);
  const r = gate.check(
    "h1",
    report([
      ["a1", "b1", 5000, 4],
      ["b1", "a1", 5000, 4], // h2's VM: not h1's to report
      ["a2", "lan", 100, 1], // the LAN is a fine destination
      ["a1", "zz", 100, 1], // nobody the proxy knows
    ], [["a1", 60, 1], ["b1", 60, 1]]),
    facts,
    1000,
  );
  assertEquals(r?.pairs, [["a1", "b1", 5000, 4], ["a2", "lan", 100, 1]]);
  assertEquals(r?.group, [["a1", 60, 1]]);
  assertEquals(gate.refused["source not the reporter's"], 2);
  assertEquals(gate.refused["unknown destination"], 1);
});

Deno.test("report gate: huge counts are clamped to a link's capacity over the time covered", () => {
  const gate = new ReportGate(1000);
  gate.joined("h1", 0);
  // 1e308 bytes claimed over a claimed hour, 500 ms after joining.
  const r = gate.check(
    "h1",
    { ...report([["a1", "b1", 1e308, 1e308]]), intervalMs: 3_600_000 },
    facts,
    500,
  );
  const [, , bytes, frames] = r!.pairs[0];
  assertEquals(bytes, 500 * MAX_LINK_BYTES_PER_MS);
  assertEquals(frames, Math.ceil(bytes / 60));
  assertEquals(r!.intervalMs, 500);
  assertEquals(gate.refused.clamped, 1);
  // The budget is for the whole report: a second heavy pair gets nothing.
  const r2 = gate.check("h1", report([["a1", "b1", 1e15, 1], ["a2", "b1", 1e15, 1]]), facts, 1500);
  assertEquals(r2!.pairs.reduce((n, p) => n + p[2], 0), 1000 * MAX_LINK_BYTES_PER_MS);
});

Deno.test("report gate: a second report within half an interval is refused whole", () => {
  const gate = new ReportGate(1000);
  gate.joined("h1", 0);
  const ok = report([["a1", "b1", 1, 1]]);
  assertEquals(gate.check("h1", ok, facts, 1000)?.pairs.length, 1);
  assertEquals(gate.check("h1", ok, facts, 1200), null);
  assertEquals(gate.refused["report too soon"], 1);
  assertEquals(gate.check("h1", ok, facts, 1600)?.pairs.length, 1, "half an interval later");
  gate.forget("h1");
  gate.joined("h1", 1700);
  assertEquals(gate.check("h1", ok, facts, 1800)?.pairs.length, 1, "a rejoined host starts over");
});

Deno.test("report gate: a host quiet for a minute (it sent no empty reports) is bounded by one interval", () => {
  // Hosts send nothing for an interval in which nothing was counted: the next report covers
  // the interval it claims, not the whole silence, and its counts are clamped to that.
  const gate = new ReportGate(1000);
  gate.joined("h1", 0);
  assertEquals(gate.check("h1", report([["a1", "b1", 10, 1]]), facts, 1000)?.pairs.length, 1);
  const huge = 100 * 1000 * MAX_LINK_BYTES_PER_MS;
  const r = gate.check("h1", report([["a1", "b1", huge, 1e9]]), facts, 61_000);
  assertEquals(r?.intervalMs, 1000);
  assertEquals(r?.pairs[0][2], 1000 * MAX_LINK_BYTES_PER_MS, "one interval's capacity");
  assertEquals(gate.refused.clamped, 1);
  // And the next one, half an interval later, is still too soon.
  assertEquals(gate.check("h1", report([["a1", "b1", 10, 1]]), facts, 61_400), null);
});
