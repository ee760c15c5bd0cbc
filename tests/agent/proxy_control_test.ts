/**
 * A host acting on the proxy's instructions: rule sets applied and acknowledged with their
 * sequence number, and a moved VM forgotten only if it was local (a claim the proxy relays
 * about someone else's MAC changes nothing here).
 */
import { assert, assertEquals } from "../support/assert.ts";
import { dispatchProxyMessage } from "../../agent/proxy_control.ts";
import { Switch } from "../../agent/switch/switch.ts";
import type { FastPathManager } from "../../agent/fastpath/manager.ts";
import type { Link } from "../../agent/link/link.ts";
import { PeerProbes } from "../../agent/fastpath/peer_probe.ts";

function setup() {
  const sw = new Switch({ role: "host", maxMacs: 100, macAgeMs: 60_000, moveQuietMs: 0 });
  sw.attach({ name: "device", kind: "device", send: () => true });
  const sent: unknown[] = [];
  const uplink = { sendControl: (m: unknown) => (sent.push(m), true) } as unknown as Link;
  const handled: string[] = [];
  const fastPaths = {
    handle: (m: { type: string }) => handled.push(m.type),
  } as unknown as FastPathManager;
  return {
    sw,
    sent,
    uplink,
    handled,
    ctx: { sw, fastPaths, present: () => false, now: () => 1000, onCertificate: () => {} },
  };
}

Deno.test("proxy control: a rules-set is applied and acknowledged with its sequence", () => {
  const { sw, sent, uplink, ctx } = setup();
  dispatchProxyMessage(ctx, {
    type: "rules-set",
    owner: "adapt",
    seq: 7,
    rules: [{ src: null, dst: "02:00:00:00:00:02", target: "drop", owner: "adapt" }],
  }, uplink);
  assertEquals(sw.rules.list().length, 1);
  assertEquals(sent, [{ type: "rules-applied", owner: "adapt", seq: 7 }]);
});

Deno.test("proxy control: mac-moved forgets a local VM, and only a local one", () => {
  const { sw, uplink, ctx } = setup();
  sw.macs.learn(0x020000000001, "device", 0);
  sw.macs.learn(0x020000000009, "peer:h3", 0);
  dispatchProxyMessage(ctx, { type: "mac-moved", mac: "02:00:00:00:00:01", to: "h2" }, uplink);
  dispatchProxyMessage(ctx, { type: "mac-moved", mac: "02:00:00:00:00:09", to: "h2" }, uplink);
  assertEquals(sw.macs.get(0x020000000001), undefined);
  assert(sw.macs.get(0x020000000009) !== undefined, "a MAC behind a peer is not ours to forget");
});

Deno.test("proxy control: fast-path instructions go to the fast-path manager", () => {
  const { uplink, handled, ctx } = setup();
  dispatchProxyMessage(ctx, { type: "peer-close", peer: "h2", reason: "done" }, uplink);
  dispatchProxyMessage(ctx, {
    type: "peer-expect",
    peer: "h2",
    key: "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ticket: "t",
    ttlMs: 5,
  }, uplink);
  assertEquals(handled, ["peer-close", "peer-expect"]);
});

Deno.test("proxy control: probe-peer goes to the host's probes and is answered on the uplink", async () => {
  const { sent, uplink, ctx } = setup();
  const msg = {
    type: "probe-peer" as const,
    peer: "h2",
    key: "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    address: "10.0.0.3:7810",
  };
  // Without probes (a host built without them): answered "no" at once, never silence.
  dispatchProxyMessage(ctx, msg, uplink);
  assertEquals(sent, [{ type: "probe-result", peer: "h2", error: "this host runs no probes" }]);
  const probes = new PeerProbes({
    probe: () => Promise.resolve(0.25),
    caPem: () => "CA",
    denied: () => false,
    clock: { monotonic: () => 5000 },
  });
  dispatchProxyMessage({ ...ctx, probes }, msg, uplink);
  await new Promise((r) => setTimeout(r, 0));
  assertEquals(sent[1], { type: "probe-result", peer: "h2", rttMs: 0.25 });
});
