/**
 * The fast paths' own RTT, end to end in one process: three hosts on the memory network; VM A
 * on h0 sends to B on h1 until adaptation gives h0|h1 a fast path. The hosts' fast-path
 * managers report the link's keepalive RTT (path-rtt), the proxy's underlay book takes it as
 * the pair's measured RTT, and placement prices h0|h1 by it instead of the sum of the two
 * star links' RTTs, which h0|h2 (no fast path) still gets. A host that claims an RTT for a
 * pair without a fast path is refused and counted, and keeps its star link.
 */
import { assert, assertEquals } from "../support/assert.ts";
import { startOverlay } from "../support/sim.ts";
import { frame, vmMac } from "../support/frames.ts";
import { BROADCAST_MAC } from "../../agent/switch/ethernet.ts";
import type { UnderlayReply } from "../../proxy/api_types.ts";
import { PATH_RTT_CHECK_MS } from "../../agent/traffic/path_rtt.ts";

const FAST = { updateInterval: 100, smoothing: 300, hysteresis: 300, moveQuiet: 100 };

Deno.test("sim path rtt: a pair with a fast path gets its RTT from the fast path, reported by its hosts", async () => {
  const sim = await startOverlay({ hosts: 3, common: FAST, device: { writtenCapacity: 100_000 } });
  const { proxy, hosts, devices: devs, until, clock } = sim;
  const [A, B, C] = [vmMac(1), vmMac(2), vmMac(3)];
  // One way only: the far end answers the near end's keepalives, so the link is timed (a
  // link busy both ways has no reason to ping and reports nothing new).
  const traffic = clock.every(5, () => devs[0].inject(frame(B, A, 1000)));
  const book = proxy.placement.underlay.book;
  try {
    devs[1].inject(frame(BROADCAST_MAC, B));
    devs[2].inject(frame(BROADCAST_MAC, C));
    await until(() => proxy.adapt.pairs.get("h0|h1")?.phase === "up", "the fast path h0|h1");
    await until(
      () => book.estimate("h0", "h1", clock.now())?.rttMs != null,
      "h0|h1's RTT reported by its hosts",
      4 * PATH_RTT_CHECK_MS,
    );
    await until(
      () =>
        book.estimate("(proxy)", "h2", clock.now())?.rttMs != null &&
        book.estimate("(proxy)", "h0", clock.now())?.rttMs != null,
      "h0's and h2's star RTTs",
    );
    const linkRtt = hosts[0].fastPaths.link("h1")!.stats().rttMs;
    assert(linkRtt !== null, "the fast path timed its keepalives");

    const u = await (await sim.apiFetch("/api/underlay")).json() as UnderlayReply;
    const pair = u.pairs.find((p) => p.pair === "h0|h1")!;
    assertEquals([pair.kind, pair.rttMs !== null, pair.rttAgeMs !== null], [
      "host pair",
      true,
      true,
    ]);
    const planned = new Map(u.planned.map((p) => [p.pair, p]));
    assertEquals(planned.get("h0|h1")!.rttVia, "fast-path");
    assertEquals(planned.get("h0|h1")!.rttMs, pair.rttMs, "the pair's own, not a star sum");
    const star = (h: string) => u.pairs.find((p) => p.pair === `(proxy)|${h}`)!.rttMs!;
    assertEquals(planned.get("h0|h2")!.rttVia, "star", "no fast path: its star links' sum");
    assertEquals(planned.get("h0|h2")!.rttMs, star("h0") + star("h2"));
    assertEquals(Object.values(u.pathRttRefused).reduce((a, b) => a + b), 0, "none refused");

    // h2 claims a round trip to h0, with which it has no fast path: refused, counted, and
    // h2 keeps its star link.
    const before = proxy.placement.underlay.pathRttRefused["no fast path"];
    hosts[2].uplink()!.sendControl({ type: "path-rtt", paths: [["h0", 0.001]] });
    await until(
      () => proxy.placement.underlay.pathRttRefused["no fast path"] === before + 1,
      "h2's claim refused",
    );
    assertEquals(book.estimate("h0", "h2", clock.now())?.rttMs ?? null, null);
    assert(proxy.hosts().has("h2"), "h2 is still connected");

    const metrics = await (await sim.apiFetch("/metrics")).text();
    assert(/^vnet_underlay_rtt_ms\{pair="h0\|h1"\} /m.test(metrics), "the pair's RTT in /metrics");
    assert(
      /^vnet_underlay_path_rtt_refused_total\{reason="no fast path"\} 1$/m.test(metrics),
      "the refusal in /metrics",
    );
  } finally {
    traffic.cancel();
    await sim.close();
  }
});
