/**
 * The proxy's active RTT probes against fakes: which pairs it probes (only those VM traffic
 * makes matter, with no RTT of their own, a few per interval, each dialer once), who dials
 * (an end whose peer the proxy reached), that 10,000 connected hosts cost it no more than the
 * three that hold talking VMs, and which answers it takes (asked, in time, plausible).
 */
import { assert, assertEquals } from "../support/assert.ts";
import {
  MAX_CANDIDATES,
  PROBE_ANSWER_MS,
  PROBE_HOSTS,
  PROBE_INTERVAL_MS,
  PROBE_STALE_MS,
  probeCandidates,
  type ProbeRound,
  type ProbeTargets,
  UnderlayProbes,
} from "../../proxy/underlay_probes.ts";
import type { ProbePeer } from "../../agent/control/proxy_messages.ts";
import { MAX_RTT_MS, UnderlayBook } from "../../adapt/underlay.ts";
import { type HostPair, hostPair } from "../../adapt/planner.ts";

const KEY = (h: string) => `SHA256:${h.padEnd(43, "A")}`;

/** Every host reachable at 10.0.0.N:7810 unless listed in `unreachable`. */
function targets(unreachable: Set<string> = new Set()) {
  const sent: [string, ProbePeer][] = [];
  const t: ProbeTargets = {
    listen: (h) => unreachable.has(h) ? null : `10.0.0.${h.slice(1)}:7810`,
    keyOf: (h) => KEY(h),
    send: (h, msg) => (sent.push([h, msg]), true),
  };
  return { t, sent };
}

/** A round over `book` where VMs talk across `pairs` (bytes/s each), all hosts connected. */
function round(
  book: UnderlayBook,
  pairs: [string, string, number][],
  now: number,
  extra: Partial<ProbeRound> = {},
): ProbeRound {
  const pairRates = new Map<HostPair, number>();
  const hostRates = new Map<string, number>();
  for (const [a, b, r] of pairs) {
    pairRates.set(hostPair(a, b), r);
    hostRates.set(a, (hostRates.get(a) ?? 0) + r).set(b, (hostRates.get(b) ?? 0) + r);
  }
  return {
    pairRates,
    hostRates,
    connected: () => true,
    direct: () => false,
    estimate: (a, b) => book.estimate(a, b, now),
    ...extra,
  };
}

Deno.test("underlay probes: a few per interval, one per dialer, least recently probed first", () => {
  const book = new UnderlayBook();
  const { t, sent } = targets();
  // maxHosts 0: the pairs VM traffic crosses only (pairs among busy hosts: a test below).
  const probes = new UnderlayProbes(t, { perRound: 2, maxHosts: 0 });
  // Three pairs, three distinct dialers (the earlier name dials the later).
  const traffic: [string, string, number][] = [["h1", "h2", 9e6], ["h3", "h4", 5e6], [
    "h5",
    "h6",
    1e6,
  ]];
  const r = (now: number) => round(book, traffic, now);
  const s0 = probes.tick(0, () => r(0));
  assertEquals(s0.map((o) => `${o.dialer}>${o.msg.peer}`), ["h1>h2", "h3>h4"], "busiest first");
  assertEquals(sent[0][1], {
    type: "probe-peer",
    peer: "h2",
    key: KEY("h2"),
    address: "10.0.0.2:7810",
  });
  // Within the interval: nothing, however often the service samples.
  assertEquals(probes.tick(PROBE_INTERVAL_MS - 1, () => r(PROBE_INTERVAL_MS - 1)), []);
  // Next round: the pair never probed first; the two probed are not again within staleMs.
  const s1 = probes.tick(PROBE_INTERVAL_MS, () => r(PROBE_INTERVAL_MS));
  assertEquals(s1.map((o) => o.pair), ["h5|h6"]);
  assertEquals(probes.counts().sent, 3);
  // After staleMs with no RTT taken (never answered), they are due again.
  const later = PROBE_STALE_MS + PROBE_INTERVAL_MS;
  assertEquals(probes.tick(later, () => r(later)).length, 2);
  assertEquals(probes.counts().unanswered, 3, "every probe past its answer time counted");
});

Deno.test("underlay probes: only pairs without an RTT of their own, and whose hosts are connected", () => {
  const book = new UnderlayBook();
  const { t } = targets();
  const probes = new UnderlayProbes(t, { perRound: 10, maxHosts: 0 });
  const now = 1_000_000;
  book.observeRtt("h3", "h4", 2, now - 1000, "probe"); // probed lately: fresh
  book.observeRtt("h5", "h6", 2, now - PROBE_STALE_MS - 1, "probe"); // probed long ago: stale
  book.observeRtt("h7", "h8", 2, now - 1000, "fast-path"); // its fast path went down
  const traffic: [string, string, number][] = [
    ["h1", "h2", 5],
    ["h3", "h4", 4],
    ["h5", "h6", 3],
    ["h7", "h8", 2],
    ["h9", "h10", 1],
  ];
  const orders = probes.choose(
    round(book, traffic, now, {
      direct: (p) => p === "h1|h2", // a fast path: its keepalives time it
      connected: (h) => h !== "h10",
    }),
    now,
  );
  // h7|h8's fast-path RTT is not what pricing takes once the fast path is down: probed.
  assertEquals(orders.map((o) => o.pair).sort(), ["h5|h6", "h7|h8"]);
});

Deno.test("underlay probes: the dialer is an end whose peer the proxy reached; none, no probe", () => {
  const book = new UnderlayBook();
  const traffic: [string, string, number][] = [["h1", "h2", 1e6]];
  // h2 unreachable: h2 dials h1.
  let t = targets(new Set(["h2"]));
  let orders = new UnderlayProbes(t.t).choose(round(book, traffic, 0), 0);
  assertEquals(orders.map((o) => [o.dialer, o.msg.peer, o.msg.address]), [
    ["h2", "h1", "10.0.0.1:7810"],
  ]);
  // Neither reachable (behind NATs): no probe, and nothing recorded.
  t = targets(new Set(["h1", "h2"]));
  const probes = new UnderlayProbes(t.t);
  assertEquals(probes.tick(0, () => round(book, traffic, 0)), []);
  assertEquals(probes.counts().sent, 0);
  // A host with a probe outstanding dials nothing more; its peer dials instead if it can.
  t = targets();
  const p2 = new UnderlayProbes(t.t, { perRound: 4, maxHosts: 0 });
  const two: [string, string, number][] = [["h1", "h2", 2e6], ["h1", "h3", 1e6]];
  orders = p2.tick(0, () => round(book, two, 0));
  assertEquals(orders.map((o) => `${o.dialer}>${o.msg.peer}`), ["h1>h2", "h3>h1"]);
  // Without targets (no reachability checks): never a probe.
  assertEquals(new UnderlayProbes(null).tick(0, () => round(book, traffic, 0)), []);
});

Deno.test("underlay probes: 10,000 connected hosts, 3 holding talking VMs: only their pairs are looked at", () => {
  const book = new UnderlayBook();
  const { t } = targets();
  const probes = new UnderlayProbes(t);
  const looked = new Set<string>();
  let connectedCalls = 0;
  const hosts = Array.from({ length: 10_000 }, (_, i) => `h${i}`);
  const connected = new Set(hosts);
  const r = round(book, [["h17", "h4242", 1e6], ["h4242", "h9999", 2e6]], 0, {
    connected: (h) => (connectedCalls++, connected.has(h)),
    estimate: (a, b) => (looked.add(hostPair(a, b)), book.estimate(a, b, 0)),
  });
  const started = performance.now();
  const orders = probes.choose(r, 0);
  const ms = performance.now() - started;
  assertEquals([...looked].sort(), ["h17|h4242", "h17|h9999", "h4242|h9999"]);
  assert(connectedCalls <= 6, `${connectedCalls} look-ups`);
  // One probe per dialer: h17 -> h4242, h4242 -> h9999, and h9999 -> h17 (h17 is busy).
  assertEquals(orders.map((o) => `${o.dialer}>${o.msg.peer}`).sort(), [
    "h17>h4242",
    "h4242>h9999",
    "h9999>h17",
  ]);
  assert(ms < 50, `${ms} ms`);
});

Deno.test("underlay probes: only an answer it asked for, in time and plausible, is taken", () => {
  const book = new UnderlayBook();
  const { t } = targets();
  const probes = new UnderlayProbes(t, { perRound: 4, maxHosts: 0 });
  const traffic: [string, string, number][] = [
    ["h1", "h2", 4e6],
    ["h3", "h4", 3e6],
    ["h5", "h6", 2e6],
    ["h7", "h8", 1e6],
  ];
  probes.tick(0, () => round(book, traffic, 0));
  const res = (peer: string, v: number | string) =>
    typeof v === "number"
      ? { type: "probe-result" as const, peer, rttMs: v }
      : { type: "probe-result" as const, peer, error: v };
  // Never asked: h9 was not sent a probe; h2 was not asked about h1 (h1 was, about h2).
  assertEquals(probes.observe("h9", res("h1", 1), 100, book), "unasked");
  assertEquals(probes.observe("h2", res("h1", 1), 100, book), "unasked");
  assertEquals(book.estimate("h1", "h2", 100), null, "nothing taken");
  // Out of range: refused, and the probe is spent.
  assertEquals(probes.observe("h3", res("h4", MAX_RTT_MS + 1), 100, book), "out of range");
  assertEquals(probes.observe("h3", res("h4", 5), 100, book), "unasked", "answered once");
  // An error: a failed probe, with its reason kept.
  assertEquals(probes.observe("h5", res("h6", "no answer at 10.0.0.6:7810"), 100, book), "failed");
  // Too late.
  assertEquals(probes.observe("h7", res("h8", 1), PROBE_ANSWER_MS + 1, book), "late");
  // The good one.
  assertEquals(probes.observe("h1", res("h2", 0.7), 200, book), "taken");
  const e = book.estimate("h1", "h2", 200)!;
  assertEquals([e.rttMs, e.rttSource], [0.7, "probe"]);
  const c = probes.counts();
  assertEquals(
    [c.sent, c.answered, c.failed, c.refused, c.outstanding],
    [4, 1, 1, { "unasked": 3, "late": 1, "out of range": 1 }, 0],
  );
  assertEquals(c.lastFailure, "h5 -> h6: no answer at 10.0.0.6:7810");
});

Deno.test("underlay probes: candidates are the traffic's pairs, then pairs among the busiest hosts, bounded", () => {
  const hostRates = new Map(Array.from({ length: 100 }, (_, i) => [`h${i}`, 1000 - i]));
  const pairRates = new Map<HostPair, number>([["h50|h99", 1], ["h0|h1", 5]]);
  const c = probeCandidates(pairRates, hostRates, PROBE_HOSTS);
  assertEquals(
    c.slice(0, 2),
    ["h0|h1", "h50|h99"],
    "the pairs traffic crosses first, busiest first",
  );
  assertEquals(c.length, 1 + (PROBE_HOSTS * (PROBE_HOSTS - 1)) / 2, "h0|h1 is among both");
  const busiest = new Set(Array.from({ length: PROBE_HOSTS }, (_, i) => `h${i}`));
  assert(
    c.slice(2).every((p) => p.split("|").every((h) => busiest.has(h))),
    "only the busiest hosts' pairs",
  );
  const many = new Map(
    Array.from({ length: 5000 }, (_, i) => [hostPair(`a${i}`, `b${i}`), i] as const),
  );
  assertEquals(probeCandidates(many, hostRates, PROBE_HOSTS).length, MAX_CANDIDATES);
});
