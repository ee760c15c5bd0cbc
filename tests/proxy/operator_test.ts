/**
 * The operator's placement decisions survive a proxy restart, seen the way users see it: the
 * proxy runs as `deno task agent --proxy` (the task's exact permissions), the decisions are
 * made with `deno task agent advise set ...` and `adapt set migrate on`, the proxy is stopped
 * and started again on the same state dir, and `deno task agent advise --json` shows them
 * back. Started again without `--migrate-hook`, the rest comes back but migration stays off,
 * with a warning that says what to do. (The in-process twin for rules and adaptation
 * settings is in tests/sim/api_test.ts.)
 */
import { assert, assertEquals } from "../support/assert.ts";
import { agentTask, spawnAgentTask } from "../support/agent_task.ts";
import type { PlacementReply } from "../../proxy/api_types.ts";

const VM = "02:00:00:00:00:0A";

Deno.test("deno task agent: the operator's placement decisions survive a proxy restart", async () => {
  const stateDir = await Deno.makeTempDir({ prefix: "vnet-operator-" });
  const free = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const api = `127.0.0.1:${(free.addr as Deno.NetAddr).port}`;
  free.close();
  const where = ["--api", api, "--state-dir", stateDir];
  const proxyArgs = ["--proxy", "--listen", "127.0.0.1:0", ...where, "--log-format", "json"];
  const cli = async (...args: string[]) => {
    const r = await agentTask([...args, ...where]);
    assertEquals(r.code, 0, `agent ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  };
  /** Runs a proxy for `fn`, then stops it (also when `fn` fails): nothing is left behind. */
  const withProxy = async (extra: string[], fn: (log: string) => Promise<void>) => {
    const proxy = spawnAgentTask([...proxyArgs, ...extra]);
    try {
      await fn(await proxy.until("Control API"));
    } finally {
      assertEquals((await proxy.stop()).code, 0);
    }
  };
  const advice = async () => JSON.parse(await cli("advise", "--json")) as PlacementReply;
  try {
    await withProxy(["--migrate-hook", "/bin/true"], async () => {
      await cli("advise", "set", "slots", "h1", "4");
      await cli("advise", "set", "slots", "h2", "0");
      await cli("advise", "set", "pin", VM);
      await cli("advise", "set", "moves=2");
      await cli("advise", "set", "gain=0.25");
      await cli("adapt", "set", "migrate", "on");
      const now = await advice();
      assertEquals(now.operatorSlots, { h1: 4, h2: 0 });
      assertEquals(now.migration.enabled, true);
    });

    await withProxy(["--migrate-hook", "/bin/true"], async (log) => {
      const restored = log.split("\n").filter((l) => l.includes("Restored the operator's"));
      assertEquals(restored.length, 1, log);
      assert(restored[0].includes("migration on"), restored[0]);
      const back = await advice();
      assertEquals(back.operatorSlots, { h1: 4, h2: 0 });
      assertEquals(back.pinned, [VM.toLowerCase()]);
      assertEquals([back.settings.maxMoves, back.settings.minGain], [2, 0.25]);
      assertEquals(back.migration.enabled, true, "migrate on, as the operator left it");
      const adapt = JSON.parse(await cli("adapt", "--json"));
      assertEquals(adapt.migrate, true);
      // A change after the restart is kept too: h2 back to its own --vm-slots.
      await cli("advise", "set", "slots", "h2", "auto");
    });

    await withProxy([], async (log) => {
      assert(log.includes("no --migrate-hook now: advice only"), log);
      const back = await advice();
      assertEquals(back.operatorSlots, { h1: 4 });
      assertEquals(back.pinned, [VM.toLowerCase()]);
      assertEquals(back.migration.enabled, false, "nothing to carry moves out with");
    });
  } finally {
    await Deno.remove(stateDir, { recursive: true });
  }
});
