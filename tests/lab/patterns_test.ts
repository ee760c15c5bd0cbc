/**
 * Root-only, short: Patterns all-to-all on four hosts, star only and then with automatic
 * adaptation from a verified cold start: adaptation adds fast paths, VTTIF's change and the
 * rules going active are measured for this run, and every message arrives. How much faster it
 * runs is bench:patterns' figure, not an assertion here (a loaded 2-core machine can invert a
 * 15-iteration comparison).
 */
import { assert } from "../support/assert.ts";
import { labUnavailable } from "../../testbed/lab.ts";
import { measureAuto, measureStar, scenarioLab, SCENARIOS } from "../../testbed/scenarios.ts";

const why = labUnavailable();

Deno.test({
  name: why
    ? `lab patterns: adaptation from a cold start adds fast paths (skipped: ${why})`
    : "lab patterns: adaptation from a cold start adds fast paths",
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
      console.log(
        `star ${star.runtimeMs} ms, adaptive ${auto.runtimeMs} ms (VTTIF ${auto.vttifMs} ms, ` +
          `VNET ${auto.vnetMs} ms)`,
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
