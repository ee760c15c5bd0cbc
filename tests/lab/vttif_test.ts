/**
 * Root-only: VMs on four hosts exchange traffic in a ring, then all-to-all; the proxy's
 * `agent topology --json` reports each pattern, and the phase change is one event.
 */
import { labTest } from "../support/lab_test.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { FAST_VTTIF } from "../../testbed/lab.ts";
import { allPeers, Phase, ringPeers, waitTopology } from "../../testbed/phases.ts";

const FAST = FAST_VTTIF;

labTest("lab vttif: ring then all-to-all", {
  hosts: 4,
  lan: false,
  proxyArgs: FAST,
  hostArgs: FAST,
}, async (lab) => {
  await lab.startAll();
  const vms = lab.vms;
  const ringPhase = await Phase.start(lab, "ring", ringPeers);
  const ring = await waitTopology(lab, (t) => t.classification.kind === "ring", 15_000);
  assertEquals(ring.classification.kind, "ring", JSON.stringify(ring.classification));
  assertEquals(ring.graph.vms.sort(), vms.map((v) => v.mac).sort());
  await ringPhase.stop();
  await Phase.start(lab, "all", allPeers);
  const all = await waitTopology(lab, (t) => t.classification.kind === "all-to-all", 15_000);
  assertEquals(all.classification.kind, "all-to-all", JSON.stringify(all.classification));
  const kinds = all.events.map((e: { to: string }) => e.to);
  assertEquals(kinds.slice(-2), ["ring", "all-to-all"], JSON.stringify(kinds));
  const proxy = lab.processes.find((p) => p.name === "proxy")!;
  await lab.waitForLog(proxy, /Topology changed: ring -> all-to-all/, 2000);
  assert(all.matrix.length >= 12, "every directed pair is in the matrix");
});
