import { assert, assertEquals } from "../../support/assert.ts";
import { ForwardingTable, type RuleSpec } from "../../../agent/switch/forwarding_table.ts";

/** The obviously-correct reference: scan every rule, rank by specificity. */
function reference(rules: RuleSpec[], src: number, dst: number, usable: (t: string) => boolean) {
  const rank = (
    r: RuleSpec,
  ) => (r.src !== null && r.dst !== null ? 0 : r.dst !== null ? 1 : r.src !== null ? 2 : 3);
  const live = new Map<string, RuleSpec>();
  for (const r of rules) live.set(`${r.src}>${r.dst}`, r); // later adds replace earlier ones
  const matching = [...live.values()]
    .filter((r) => (r.src === null || r.src === src) && (r.dst === null || r.dst === dst))
    .filter((r) => r.target === "drop" || usable(r.target))
    .sort((a, b) => rank(a) - rank(b));
  return matching[0]?.target ?? null;
}

Deno.test("forwarding table agrees with a linear-scan reference on random rules and frames", () => {
  let seed = 42;
  const rand = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
  for (let round = 0; round < 200; round++) {
    const t = new ForwardingTable();
    const specs: RuleSpec[] = [];
    const targets = ["proxy", "peer:a", "peer:b", "drop", "device"];
    for (let i = rand(12); i > 0; i--) {
      const s: RuleSpec = {
        src: rand(3) === 0 ? null : rand(5),
        dst: rand(3) === 0 ? null : rand(5),
        target: targets[rand(targets.length)],
      };
      specs.push(s);
      t.add(s);
      if (rand(4) === 0) {
        const victim = specs[rand(specs.length)];
        t.remove(victim.src, victim.dst);
        // Reference: removal deletes whatever rule holds that match now.
        for (let j = specs.length - 1; j >= 0; j--) {
          if (specs[j].src === victim.src && specs[j].dst === victim.dst) specs.splice(j, 1);
        }
      }
    }
    const down = new Set([targets[rand(targets.length)]]);
    const usable = (x: string) => !down.has(x);
    for (let src = 0; src < 5; src++) {
      for (let dst = 0; dst < 5; dst++) {
        assertEquals(
          t.lookup(src, dst, usable)?.target ?? null,
          reference(specs, src, dst, usable),
        );
      }
    }
    assertEquals(t.size, t.list().length);
  }
});

Deno.test("forwarding table: a rule whose link is down falls through to the next one", () => {
  const t = new ForwardingTable();
  t.add({ src: 1, dst: 2, target: "peer:b", owner: "adapt" });
  t.add({ src: null, dst: null, target: "proxy" });
  assertEquals(t.lookup(1, 2, () => true)?.target, "peer:b");
  assertEquals(t.lookup(1, 2, (x) => x !== "peer:b")?.target, "proxy");
  assertEquals(t.removeWhere((r) => r.owner === "adapt").length, 1);
  assert(t.lookup(1, 2, () => true)?.target === "proxy");
});
