/** operator.json: written privately and read back; a damaged file is refused with the fix. */
import { assert, assertEquals, assertRejects } from "../support/assert.ts";
import { OperatorStore } from "../../proxy/operator_state.ts";

Deno.test("operator state: saved and restored; a damaged file names itself and the fix", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assertEquals((await OperatorStore.load(dir)).saved, null);
    const store = await OperatorStore.load(dir);
    const state = {
      proxyRules: [{ src: null, dst: "02:00:00:00:00:02", target: "drop", owner: "operator" }],
      hostRules: { h1: [{ src: "02:00:00:00:00:01", dst: null, target: "proxy" }] },
      adapt: { enabled: false, budget: 3, pins: ["a|b"], forbids: [] },
    };
    await Promise.all([store.save(state, 1), store.save(state, 2)]);
    const saved = (await OperatorStore.load(dir)).saved!;
    assertEquals(saved.savedAt, 2, "the later save is the one kept");
    assertEquals(saved.adapt, state.adapt);
    assertEquals(saved.proxyRules[0].dst, "02:00:00:00:00:02");
    await Deno.writeTextFile(`${dir}/operator.json`, '{"version":1,"adapt":{"enabled":"yes"}}', {
      mode: 0o600,
    });
    const e = await assertRejects(() => OperatorStore.load(dir), Error, "adapt.enabled");
    assert(e.message.includes("delete it to start from the configuration alone"), e.message);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
