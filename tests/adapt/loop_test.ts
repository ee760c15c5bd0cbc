/**
 * The adaptation loop's choice of who dials, its fall-back to the other direction and to a
 * hole punch, and the truth it tells about every pair: against a fake overlay whose hosts
 * record the instructions they get.
 */
import { assert, assertEquals } from "../support/assert.ts";
import { AdaptLoop, type HostReachView, type Overlay } from "../../adapt/loop.ts";
import type { ProxyMessage } from "../../agent/control/messages.ts";
import { ManualClock } from "../../agent/manual_clock.ts";
import type { TopologyGraph } from "../../inference/topology.ts";

const KEY = (h: string) => `SHA256:${h.padEnd(43, "A")}`;

/** Two hosts h1, h2 with a VM each, talking; reachability as given. */
function overlay(reach: Record<string, "reachable" | "unreachable">) {
  const sent: { to: string; msg: ProxyMessage }[] = [];
  const hosts = new Map(
    ["h1", "h2"].map((
      h,
    ) => [h, { sendControl: (msg: ProxyMessage) => !!sent.push({ to: h, msg }) }]),
  );
  const graph: TopologyGraph = {
    vms: ["02:00:00:00:00:01", "02:00:00:00:00:02"],
    edges: [{ a: "02:00:00:00:00:01", b: "02:00:00:00:00:02", bytesPerSec: 1e6, weight: 1 }],
    maxBytesPerSec: 1e6,
  };
  const view = (h: string): HostReachView => ({
    state: reach[h],
    listen: reach[h] === "reachable" ? `10.0.0.${h.slice(1)}:7810` : null,
    outside: { hostname: `192.0.2.${h.slice(1)}`, port: 40000 },
    reason: reach[h] === "reachable"
      ? `the proxy reached ${h}`
      : `the proxy could not reach ${h} at 192.0.2.${h.slice(1)}:7810: no answer (timed out)`,
  });
  const rechecked: string[] = [];
  const o: Overlay = {
    hosts: () => hosts,
    listenAddress: (h) => view(h).listen,
    keyOf: KEY,
    vmHosts: () => new Map([["02:00:00:00:00:01", "h1"], ["02:00:00:00:00:02", "h2"]]),
    topology: () => graph,
    reach: view,
    recheck: (h) => void rechecked.push(h),
  };
  return { o, sent, rechecked };
}

const SETTINGS = { enabled: true, budget: null, pins: [], forbids: [], keepMargin: 0.5 };

/** The fast-path instructions sent, as "to:type", in order. */
function instructions(sent: { to: string; msg: ProxyMessage }[]): string[] {
  return sent.filter((s) => s.msg.type !== "peer-macs" && s.msg.type !== "rules-set")
    .map((s) => `${s.to}:${s.msg.type}`);
}

Deno.test("loop: the host that cannot be reached dials the one that can", () => {
  const clock = new ManualClock();
  const { o, sent } = overlay({ h1: "reachable", h2: "unreachable" });
  const loop = new AdaptLoop(o, SETTINGS, { clock });
  loop.reconcile(clock.now());
  assertEquals(instructions(sent), ["h1:peer-expect", "h2:peer-connect"]);
  const connect = sent.find((s) => s.msg.type === "peer-connect")!.msg;
  assertEquals(connect.type === "peer-connect" && connect.address, "10.0.0.1:7810");
  loop.onHostMessage("h2", { type: "peer-up", peer: "h1", via: "dialed" }, clock.now() + 40);
  loop.onHostMessage("h1", { type: "peer-up", peer: "h2", via: "accepted" }, clock.now() + 50);
  const why = loop.explain("h1|h2", clock.now());
  assertEquals(why.path, "direct");
  assertEquals(why.origin, { how: "dial", dialer: "h2" });
  assertEquals(why.upAfterMs, 50);
  assert(why.reason.startsWith("direct: h2 dialed h1"), why.reason);
});

Deno.test("loop: a failed dial is retried the other way at once, before the pair rests", () => {
  const clock = new ManualClock();
  const { o, sent, rechecked } = overlay({ h1: "reachable", h2: "reachable" });
  const loop = new AdaptLoop(o, SETTINGS, { clock });
  loop.reconcile(clock.now());
  assertEquals(instructions(sent), ["h2:peer-expect", "h1:peer-connect"], "h1 dials h2 first");
  sent.length = 0;
  loop.onHostMessage("h1", {
    type: "peer-down",
    peer: "h2",
    reason: "Cannot connect to 10.0.0.2:7810: no answer within 3000 ms",
  }, clock.now());
  assertEquals(instructions(sent), ["h1:peer-expect", "h2:peer-connect"], "then h2 dials h1");
  assertEquals(rechecked, ["h2"], "the proxy looks again at the host a peer could not reach");
  assertEquals(loop.pairs.get("h1|h2")?.phase, "connecting");
  const during = loop.explain("h1|h2", clock.now());
  assert(during.reason.includes("h2 dials h1"), during.reason);
  assert(during.reason.includes("h1 dials h2 at 10.0.0.2:7810 failed"), during.reason);
});

Deno.test("loop: a late report from the first dialer does not end the second attempt", async () => {
  const clock = new ManualClock();
  const { o, sent } = overlay({ h1: "reachable", h2: "reachable" });
  const loop = new AdaptLoop(o, SETTINGS, { clock });
  loop.reconcile(clock.now());
  await clock.advance(10_001);
  loop.reconcile(clock.now()); // attempt 1 timed out at the proxy: h2 dials h1 now
  sent.length = 0;
  loop.onHostMessage("h1", { type: "peer-down", peer: "h2", reason: "late" }, clock.now());
  assertEquals(instructions(sent), [], "the old dialer's report is not the new attempt's");
  assertEquals(loop.pairs.get("h1|h2")?.attempt, { how: "dial", dialer: "h2", acceptor: "h1" });
});

Deno.test("loop: both unreachable -> a hole punch; when it fails, the star with every reason", async () => {
  const clock = new ManualClock();
  const { o, sent } = overlay({ h1: "unreachable", h2: "unreachable" });
  let port = 61_000;
  const loop = new AdaptLoop(o, SETTINGS, { clock, punchPort: () => port++ });
  loop.reconcile(clock.now());
  assertEquals(instructions(sent), ["h2:peer-punch", "h1:peer-punch"]);
  const punch = Object.fromEntries(
    sent.filter((s) => s.msg.type === "peer-punch").map((s) => [
      s.to,
      s.msg,
    ]),
  );
  // Each aims at the other's outside address, at the port the other connects from.
  assertEquals(punch.h1, {
    type: "peer-punch",
    ticket: (punch.h1 as { ticket: string }).ticket,
    ttlMs: 5000,
    peer: "h2",
    key: KEY("h2"),
    address: "192.0.2.2:61001",
    localPort: 61000,
    role: "tls-client",
  });
  assertEquals((punch.h2 as { address: string }).address, "192.0.2.1:61000");
  assertEquals((punch.h2 as { localPort: number }).localPort, 61001);
  const fail = "Cannot punch a hole to 192.0.2.2:61001 from port 61000: no connection within " +
    "5000 ms (ETIMEDOUT x1)";
  loop.onHostMessage("h1", { type: "peer-down", peer: "h2", reason: fail }, clock.now());
  loop.onHostMessage("h2", { type: "peer-down", peer: "h1", reason: fail }, clock.now());
  assertEquals(loop.pairs.size, 0);
  const why = loop.explain("h1|h2", clock.now());
  assertEquals(why.path, "star");
  assertEquals(why.state, "resting");
  for (
    const part of [
      "h2 is not reachable (the proxy could not reach h2",
      "h1 is not reachable either",
      "hole punch between h1 and h2 failed",
      "staying on the star",
      "next try in 5 s",
    ]
  ) assert(why.reason.includes(part), `${part} in: ${why.reason}`);
  // It rests, longer after each failed round.
  await clock.advance(5_001);
  loop.reconcile(clock.now());
  loop.onHostMessage("h1", { type: "peer-down", peer: "h2", reason: fail }, clock.now());
  assert(loop.explain("h1|h2", clock.now()).reason.includes("next try in 10 s"));
});

Deno.test("loop: a wanted pair whose host is being checked says so, not 'direct'", () => {
  const clock = new ManualClock();
  const { o } = overlay({ h1: "reachable", h2: "reachable" });
  const checking = {
    ...o,
    reach: (h: string) => ({ ...o.reach!(h)!, state: "checking" as const }),
  };
  const loop = new AdaptLoop(checking, { ...SETTINGS, pins: ["h1|h2"] }, { clock });
  loop.reconcile(clock.now());
  const why = loop.explain("h1|h2", clock.now());
  assertEquals(why.path, "star");
  assert(why.reason.includes("checking whether"), why.reason);
});
