import { assertEquals } from "../../support/assert.ts";
import { applyRules } from "../../../agent/control/apply.ts";
import { Switch } from "../../../agent/switch/switch.ts";
import { formatMac } from "../../../agent/switch/ethernet.ts";
import { vmMac } from "../../support/frames.ts";

const [a, b, c] = [1, 2, 3].map((i) => formatMac(vmMac(i)));

Deno.test("rules-set changes only what differs, and never overwrites an operator's rule", () => {
  const sw = new Switch({ role: "host", maxMacs: 10, macAgeMs: 1000, moveQuietMs: 0 });
  sw.rules.add({ src: vmMac(1), dst: vmMac(3), target: "drop", owner: "operator" });
  applyRules(sw, {
    type: "rules-set",
    owner: "adapt",
    seq: 1,
    rules: [{ src: a, dst: b, target: "peer:h2" }, { src: a, dst: c, target: "peer:h3" }],
  });
  const kept = sw.rules.list().find((r) => r.dst === vmMac(2))!;
  kept.frames = 7; // counters of a rule that stays must survive the next set
  assertEquals(sw.rules.list().find((r) => r.dst === vmMac(3))?.owner, "operator");
  applyRules(sw, {
    type: "rules-set",
    owner: "adapt",
    seq: 2,
    rules: [{ src: a, dst: b, target: "peer:h2" }],
  });
  assertEquals(sw.rules.list().find((r) => r.dst === vmMac(2))?.frames, 7);
  assertEquals(
    sw.rules.list().find((r) => r.dst === vmMac(3))?.target,
    "drop",
    "the operator's rule stays",
  );
  applyRules(sw, { type: "rules-set", owner: "adapt", seq: 3, rules: [] });
  assertEquals(sw.rules.list().map((r) => r.owner), ["operator"]);
});
