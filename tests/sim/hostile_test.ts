/**
 * The hostile-peer suite (testbed/hostile.ts) in CI: every attack refused and counted, and
 * not one honest frame lost while they ran.
 */
import { assert, assertEquals } from "../support/assert.ts";
import { runHostileSuite } from "../../testbed/hostile.ts";

Deno.test("sim hostile: every attack is refused and counted; honest traffic loses nothing", async () => {
  const report = await runHostileSuite();
  for (const a of report.attacks) {
    assert(a.tried > 0, `${a.attack}: nothing tried`);
    assertEquals(a.refused, a.tried, `${a.attack}: ${a.refused} of ${a.tried} refused`);
  }
  assert(report.honest.sent > 100, `honest frames sent: ${report.honest.sent}`);
  assertEquals(report.honest.received, report.honest.sent, "honest frames lost");
});
