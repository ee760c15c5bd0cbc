/**
 * Root-only, short: Patterns all-to-all on four hosts with the star as the bottleneck runs
 * faster once adaptation adds fast paths (the direction, and that links were added; no
 * absolute time).
 */
import { assert } from "../support/assert.ts";
import { labUnavailable } from "../../testbed/lab.ts";
import { measureAuto, measureStar, scenarioLab, SCENARIOS } from "../../testbed/scenarios.ts";

const why = labUnavailable();

Deno.test({
  name: why
    ? `lab patterns: adaptation beats the star (skipped: ${why})`
    : "lab patterns: adaptation beats the star",
  ignore: why !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const base = SCENARIOS.cluster;
    const scenario = { ...base, run: { ...base.run, iterations: 15 } };
    const lab = await scenarioLab(scenario);
    try {
      const star = await measureStar(lab, scenario);
      const auto = await measureAuto(lab, scenario);
      assert(auto.links > 0, "the adaptation added fast paths");
      assert(
        auto.runtimeMs < star.runtimeMs,
        `adaptive ${auto.runtimeMs} ms should beat the star's ${star.runtimeMs} ms`,
      );
      const bytes = auto.outcome.ranks.reduce((n, r) => n + r.bytesReceived, 0);
      assert(
        bytes === 15 * 4 * 3 * scenario.run.messageBytes,
        `every message arrived (${bytes} B)`,
      );
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${await lab.logs()}`);
    } finally {
      await lab.close();
    }
  },
});
