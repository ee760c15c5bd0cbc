/**
 * The underlay service with its active RTT probes, against fake sources: which pairs it asks
 * a host to time (only where VMs talk, never every pair of 10,000 connected hosts), how an
 * answer prices the pair (rttVia "probe" while fresh and no fast path is up), and that refused
 * answers are counted in the view.
 */
import { assert, assertEquals } from "../support/assert.ts";
import { UnderlayService, type UnderlaySources } from "../../proxy/underlay_service.ts";
import { PROBE_INTERVAL_MS } from "../../proxy/underlay_probes.ts";
import type { ProbePeer } from "../../agent/control/proxy_messages.ts";

const vm = (i: number) =>
  `02:00:00:00:${(i >> 8).toString(16).padStart(2, "0")}:${
    (i & 0xff).toString(16).padStart(2, "0")
  }`;

/** `n` connected hosts h0..h(n-1), star RTT 10 ms each; VMs talk as `talk` says. */
function overlay(n: number, talk: [number, number][]) {
  const links = new Map(
    Array.from({ length: n }, (_, i) => [`h${i}`, { rttMs: 10, txBytes: 0, rxBytes: 0 }]),
  );
  const vms = new Map<string, { host: string; since: number }>();
  const matrix: { src: string; dst: string; bytesPerSec: number }[] = [];
  for (const [a, b] of talk) {
    vms.set(vm(a), { host: `h${a}`, since: 0 });
    vms.set(vm(b), { host: `h${b}`, since: 0 });
    matrix.push({ src: vm(a), dst: vm(b), bytesPerSec: 1e6 });
  }
  const sent: [string, ProbePeer][] = [];
  const direct = new Set<string>();
  let listenCalls = 0;
  const sources: UnderlaySources = {
    starLinks: () => links,
    matrix: () => matrix,
    vm: (mac: string) => vms.get(mac) ?? null,
    direct: (pair) => direct.has(pair),
    probeTargets: {
      listen: (h) => (listenCalls++, `10.1.${h.slice(1)}:7810`),
      keyOf: (h) => `SHA256:${h.padEnd(43, "A")}`,
      send: (h, msg) => (sent.push([h, msg]), true),
    },
  };
  return { sources, sent, direct, listenCalls: () => listenCalls };
}

Deno.test("underlay service probes: 10,000 hosts, VMs talking on 3: only those hosts' pairs are probed", () => {
  const o = overlay(10_000, [[17, 4242], [4242, 9999]]);
  const u = new UnderlayService(o.sources, { settleMs: 0 });
  const started = performance.now();
  for (let t = 0; t <= 3 * PROBE_INTERVAL_MS; t += 1000) u.sample(1_000_000 + t);
  const ms = performance.now() - started;
  const probed = new Set(o.sent.map(([h, m]) => [h, m.peer].sort().join("|")));
  assertEquals([...probed].sort(), ["h17|h4242", "h17|h9999", "h4242|h9999"]);
  assertEquals(o.sent.length, 3, "each pair once within its stale time");
  assert(o.listenCalls() <= 6, `${o.listenCalls()} listen look-ups`);
  // 31 samples of 10,000 star links; pricing every pair would be 50 million.
  assert(ms < 2000, `${ms} ms`);
});

Deno.test("underlay service probes: a probed RTT prices the pair until a fast path is up or it is stale", () => {
  const o = overlay(3, [[0, 1]]);
  const u = new UnderlayService(o.sources, { settleMs: 0, maxAgeMs: 60_000 });
  const rttOf = (now: number) => {
    const p = u.plannedPaths(["h0", "h1"], now)[0];
    return `${p.rttMs} ${p.rttVia}`;
  };
  u.sample(100_000);
  assertEquals(rttOf(100_000), "20 star", "the two star links' RTTs summed");
  const asked = o.sent.find(([, m]) => m.peer === "h1" || m.peer === "h0")!;
  assertEquals(asked[0], "h0", "h0 dials h1, whose listener the proxy reached");
  const peer = asked[1].peer;
  // An answer nobody asked for: refused and counted; the pair keeps its star price.
  assertEquals(
    u.observeProbeResult("h2", { type: "probe-result", peer, rttMs: 0.1 }, 100_100),
    "unasked",
  );
  assertEquals(rttOf(100_100), "20 star");
  assertEquals(
    u.observeProbeResult("h0", { type: "probe-result", peer, rttMs: 0.4 }, 100_200),
    "taken",
  );
  assertEquals(rttOf(100_200), "0.4 probe", "the two hosts are near each other");
  assertEquals(
    u.pathCosts(["h0", "h1"], 100_200)("h0|h1"),
    { bandwidthBytesPerSec: 1e6, rttMs: 0.4 },
    "the planner is given the probed RTT (the bandwidth is the VMs' traffic's)",
  );
  o.direct.add("h0|h1");
  assertEquals(rttOf(100_200), "0.4 fast-path", "with a fast path up, its RTT is the fast path's");
  o.direct.delete("h0|h1");
  assertEquals(rttOf(160_201), "20 star", "older than maxAgeMs: the star sum again");
  const view = u.view(["h0", "h1", "h2"], 100_300);
  assertEquals(view.planned.find((p) => p.pair === "h0|h1")!.rttVia, "probe");
  assertEquals(
    [view.probes.sent, view.probes.answered, view.probes.refused.unasked],
    [o.sent.length, 1, 1],
  );
});
