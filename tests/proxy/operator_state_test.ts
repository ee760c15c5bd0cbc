/** operator.json: written privately and read back; a damaged file is refused with the fix. */
import { assert, assertEquals, assertRejects } from "../support/assert.ts";
import { OPERATOR_STATE_VERSION, OperatorStore } from "../../proxy/operator_state.ts";

const STATE = {
  proxyRules: [{ src: null, dst: "02:00:00:00:00:02", target: "drop", owner: "operator" }],
  hostRules: { h1: [{ src: "02:00:00:00:00:01", dst: null, target: "proxy" }] },
  adapt: { enabled: false, budget: 3, pins: ["a|b"], forbids: [] },
  placement: {
    settings: { maxMoves: 2, minGain: 0.25, moveCost: 0.5, latencyWeight: 0 },
    slots: { h1: 4, h2: 0 },
    pins: ["02:00:00:00:00:0a"],
    migrate: true,
  },
};

/** A temporary state dir for `fn`, removed after. */
async function inStateDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Writes operator.json as an earlier build or a careless hand would. */
function writeRaw(dir: string, v: unknown): Promise<void> {
  return Deno.writeTextFile(`${dir}/operator.json`, JSON.stringify(v), { mode: 0o600 });
}

Deno.test("operator state: saved and restored; a damaged file names itself and the fix", async () => {
  await inStateDir(async (dir) => {
    assertEquals((await OperatorStore.load(dir)).saved, null);
    const store = await OperatorStore.load(dir);
    await Promise.all([store.save(STATE, 1), store.save(STATE, 2)]);
    const saved = (await OperatorStore.load(dir)).saved!;
    assertEquals(saved.savedAt, 2, "the later save is the one kept");
    assertEquals(saved.adapt, STATE.adapt);
    assertEquals(saved.proxyRules[0].dst, "02:00:00:00:00:02");
    assertEquals(saved.placement, STATE.placement, "placement decisions round-trip");
    const raw = JSON.parse(await Deno.readTextFile(`${dir}/operator.json`));
    assertEquals(raw.version, OPERATOR_STATE_VERSION);
    await writeRaw(dir, { version: 1, adapt: { enabled: "yes" } });
    const e = await assertRejects(() => OperatorStore.load(dir), Error, "adapt.enabled");
    assert(e.message.includes("delete it to start from the configuration alone"), e.message);
    assert(e.message.includes(`${dir}/operator.json`), e.message);
  });
});

Deno.test("operator state: a version-1 file still loads, with no placement kept", async () => {
  await inStateDir(async (dir) => {
    const { placement: _, ...v1 } = STATE;
    await writeRaw(dir, { version: 1, savedAt: 7, ...v1 });
    const saved = (await OperatorStore.load(dir)).saved!;
    assertEquals([saved.savedAt, saved.placement], [7, null]);
    assertEquals(saved.adapt, STATE.adapt);
    assertEquals(saved.hostRules.h1[0].target, "proxy");
    // Even if a version-1 file somehow has a placement field, version 1 never had one.
    await writeRaw(dir, { version: 1, ...v1, placement: STATE.placement });
    assertEquals((await OperatorStore.load(dir)).saved!.placement, null);
    // A version-2 file from a proxy without placement.
    await writeRaw(dir, { version: 2, ...v1, placement: null });
    assertEquals((await OperatorStore.load(dir)).saved!.placement, null);
  });
});

Deno.test("operator state: bad placement values are refused, naming the field", async () => {
  const p = STATE.placement;
  const cases: [unknown, string][] = [
    [{ ...p, settings: { ...p.settings, maxMoves: 1.5 } }, "placement.settings.maxMoves"],
    [{ ...p, settings: { ...p.settings, minGain: 2 } }, "placement.settings.minGain"],
    [{ ...p, settings: { maxMoves: 1, minGain: 0, moveCost: 0 } }, "latencyWeight"],
    [{ ...p, slots: { h1: -1 } }, "placement.slots.h1"],
    [{ ...p, slots: { "H 1": 2 } }, "placement.slots"],
    [{ ...p, pins: ["not-a-mac"] }, "not-a-mac is not a MAC"],
    [{ ...p, pins: "02:00:00:00:00:0a" }, "placement.pins must be a list"],
    [{ ...p, migrate: "on" }, "placement.migrate"],
    ["everything", "placement must be null or have settings"],
  ];
  await inStateDir(async (dir) => {
    for (const [placement, why] of cases) {
      await writeRaw(dir, { version: 2, adapt: STATE.adapt, placement });
      await assertRejects(() => OperatorStore.load(dir), Error, why);
    }
    await writeRaw(dir, { version: 3, adapt: STATE.adapt });
    await assertRejects(() => OperatorStore.load(dir), Error, "not a version-1 or version-2");
  });
});
