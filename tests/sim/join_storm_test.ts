/**
 * A join storm is served in order: a host whose connection waits for a handshake slot longer
 * than its handshake timeout still joins on its first connection, because hosts give a join
 * the whole join-timeout and the proxy lets a connection wait that long. Before, the host's
 * message timer ran out while it waited in the queue (Deno's TLS finishes at accept), and it
 * came back after backoff.
 */
import { assert, assertEquals } from "../support/assert.ts";
import { startOverlay } from "../support/sim.ts";
import { PROXY_TLS_NAME } from "../../agent/join/join.ts";

Deno.test("sim: a host that waits in the proxy's queue past its handshake timeout joins at once", async () => {
  const timeouts = { handshakeTimeout: 1_000, joinTimeout: 30_000 };
  const sim = await startOverlay({
    hosts: 1,
    common: timeouts,
    proxy: { maxHandshakes: 1, maxHandshakesPerSource: 4 },
  });
  try {
    // Two clients that never speak hold the proxy's one slot in turn, a handshake timeout each.
    const silent = [];
    for (const source of ["10.0.9.1", "10.0.9.2"]) {
      silent.push(
        await sim.transportFrom(source).dial(sim.proxy.address, {
          serverName: PROXY_TLS_NAME,
          caPem: null,
        }),
      );
    }
    const t0 = sim.clock.now();
    const late = await sim.joinAs("late", timeouts);
    let joinedAt: number | null = null;
    late.ready.then(() => joinedAt = sim.clock.now());
    await sim.until(() => joinedAt !== null, "the late host joined", 10_000);
    const waited = joinedAt! - t0;
    assert(waited >= 2 * timeouts.handshakeTimeout, `it waited behind both: ${waited} ms`);
    assert(waited < 2 * timeouts.handshakeTimeout + 500, `and joined as the slot freed: ${waited}`);
    // Only the silent ones timed out; the late host's discovery and join were served once each.
    assertEquals(sim.proxy.refusals, { HandshakeTimeout: 2 });
    assertEquals(
      sim.proxy.discoveries.answered,
      2,
      "the first host's discovery and the late host's",
    );
    for (const c of silent) c.close();
  } finally {
    await sim.close();
  }
});
