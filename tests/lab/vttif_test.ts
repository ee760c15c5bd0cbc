/**
 * Root-only: VMs on four hosts exchange traffic in a ring, then all-to-all; the proxy's
 * `agent topology --json` reports each pattern, and the phase change is one event.
 */
import { assert, assertEquals } from "../support/assert.ts";
import { Lab, labUnavailable } from "../../testbed/lab.ts";

const why = labUnavailable();
const ROOT = new URL("../../", import.meta.url).pathname;
const FAST = ["--update-interval", "250ms", "--smoothing", "500ms", "--hysteresis", "500ms"];

Deno.test({
  name: why
    ? `lab vttif: ring then all-to-all (skipped: ${why})`
    : "lab vttif: ring then all-to-all",
  ignore: why !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const lab = await Lab.create({ hosts: 4, lan: false, proxyArgs: FAST, hostArgs: FAST });
    const generators: Deno.ChildProcess[] = [];
    try {
      await lab.startAll();
      const vms = lab.vms;
      const topology = async () =>
        JSON.parse(
          (await lab.exec(lab.proxyNs, lab.agentCommand(["topology", "--json"]), false)).stdout,
        );
      const phase = async (peersOf: (i: number) => number[], kind: string) => {
        for (const g of generators.splice(0)) g.kill("SIGTERM");
        for (let i = 0; i < vms.length; i++) {
          const to = peersOf(i).map((j) => vms[j].ip).join(",");
          const p = await lab.spawn(`traffic-${kind}-${i}`, vms[i].ns, [
            Deno.execPath(),
            "run",
            "--allow-net",
            `${ROOT}testbed/traffic.ts`,
            "--to",
            to,
            "--kbps",
            "4000",
            "--seconds",
            "30",
          ]);
          generators.push(p.child);
        }
        const until = Date.now() + 15_000;
        let t = await topology();
        while (t.classification.kind !== kind && Date.now() < until) {
          await new Promise((r) => setTimeout(r, 250));
          t = await topology();
        }
        return t;
      };
      const n = vms.length;
      const ring = await phase((i) => [(i + 1) % n, (i + n - 1) % n], "ring");
      assertEquals(ring.classification.kind, "ring", JSON.stringify(ring.classification));
      assertEquals(ring.graph.vms.sort(), vms.map((v) => v.mac).sort());
      const all = await phase((i) => vms.map((_, j) => j).filter((j) => j !== i), "all-to-all");
      assertEquals(all.classification.kind, "all-to-all", JSON.stringify(all.classification));
      const kinds = all.events.map((e: { to: string }) => e.to);
      assertEquals(kinds.slice(-2), ["ring", "all-to-all"], JSON.stringify(kinds));
      const proxy = lab.processes.find((p) => p.name === "proxy")!;
      await lab.waitForLog(proxy, /Topology changed: ring -> all-to-all/, 2000);
      assert(all.matrix.length >= 12, "every directed pair is in the matrix");
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${await lab.logs()}`);
    } finally {
      for (const g of generators) {
        try {
          g.kill("SIGTERM");
        } catch { /* gone */ }
      }
      await lab.close();
    }
  },
});
