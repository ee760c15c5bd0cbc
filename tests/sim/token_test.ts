/**
 * Token expiry: after `token-ttl` the join token admits no new host, but a host that joined
 * before comes back with its own rejoin credential.
 */
import { assert, assertEquals } from "../support/assert.ts";
import { startOverlay } from "../support/sim.ts";

Deno.test("sim token: an expired token admits no new host; joined hosts rejoin with their credential", async () => {
  const sim = await startOverlay({
    hosts: 1,
    common: { keepalive: 100, deadAfter: 600, reconnectMax: 300, handshakeTimeout: 1000 },
    proxy: { tokenTtl: 1500 },
  });
  try {
    await sim.pass(1700);
    const late = await sim.joinAs("late");
    await sim.until(() => late.fatal() !== null || late.joins() > 0, "the late host's answer");
    assert(/join token \w+ expired at/.test(late.fatal() ?? ""), late.fatal() ?? "admitted");

    sim.proxy.hosts().get("h0")!.close("test cuts the link");
    await sim.until(() => sim.hosts[0].joins() === 2, "h0 back with its credential", 5000);
    assertEquals(sim.hosts[0].fatal(), null);
    assert(sim.proxy.hosts().has("h0"));
  } finally {
    await sim.close();
  }
});
