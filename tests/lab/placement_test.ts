/**
 * Root-only: migration as adaptation on the namespace lab (testbed/placement_lab.ts). Two VM
 * pairs split across 100 Mbit/s links run Patterns with the star only, with fast paths only,
 * then the proxy moves the remote VM of each pair next to its peer through its migration hook
 * (a namespace move and RARP announcement, as a hypervisor does), one at a time, each kept on
 * its measured gain, and the applications run again. How much faster is bench:adapt-migration's
 * figure; here the moves, their reasons and that the placed run beats the fast paths.
 */
import { assert, assertEquals } from "../support/assert.ts";
import { labUnavailable } from "../../testbed/lab.ts";
import { measurePlacement, placementLab, SPLIT_PAIRS } from "../../testbed/placement_lab.ts";
import type { UnderlayReply } from "../../proxy/api_types.ts";

const why = labUnavailable();

Deno.test({
  name: why
    ? `lab placement: the proxy moves split VM pairs together through its hook (skipped: ${why})`
    : "lab placement: the proxy moves split VM pairs together through its hook",
  ignore: why !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const scenario = { ...SPLIT_PAIRS, run: { ...SPLIT_PAIRS.run, iterations: 20 } };
    const lab = await placementLab(scenario);
    try {
      const r = await measurePlacement(lab, scenario, (m) => console.log(m));
      console.log(
        `star ${r.starMs} ms, fast paths ${r.fastPathsMs} ms (${r.links} links), ` +
          `placed ${r.placedMs} ms; moves: ${
            r.moves.map((m) => `${m.vm} ${m.from}->${m.to} ${m.outcome}`).join(", ")
          }`,
      );
      assertEquals(r.moves.length, 2, "one move per split pair");
      assert(r.moves.every((m) => m.outcome === "kept" && m.hook?.ok), "moved by the hook, kept");
      assert(r.moves.every((m) => m.measuredGain! > 0), "each move measured a gain");
      assert(r.moves[1].startedAt >= r.moves[0].endedAt!, "one at a time");
      assertEquals(r.placement, ["h1", "h2", "h1", "h2"], "each remote VM next to its peer");
      assert(r.placedMs < r.fastPathsMs, "the placed applications run faster than on links");
      const events: { type: string; phase?: string }[] = await lab.agentJson("events");
      const steps = events.filter((e) => e.type === "placement").map((e) => e.phase);
      assertEquals(steps.filter((p) => p === "kept").length, 2, steps.join());
      const u: UnderlayReply = await lab.agentJson("underlay");
      const h3 = u.pairs.find((p) => p.pair === "(proxy)|h3");
      assert(h3?.bandwidthBytesPerSec != null, "h3's star link was measured");
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${await lab.logs()}`);
    } finally {
      await lab.close();
    }
  },
});
