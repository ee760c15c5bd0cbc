/**
 * Root-only: the adaptation loop on the lab. Four hosts with one VM each: all-to-all traffic
 * gets a direct link per host pair and leaves the star; a ring keeps only its four links; a
 * direct link whose TCP connection is killed falls back to the star without losing the VMs.
 */
import { labTest } from "../support/lab_test.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { FAST_VTTIF } from "../../testbed/lab.ts";
import { allPeers, Phase, ringPeers, waitTopology } from "../../testbed/phases.ts";

const FAST = FAST_VTTIF;

labTest("lab adapt: fast paths follow the topology", {
  hosts: 4,
  lan: false,
  proxyArgs: FAST,
  hostArgs: FAST,
}, async (lab, t) => {
  await lab.startAll();
  const cli = (...args: string[]) => lab.agentJson(...args);
  const fastUp = async () =>
    (await cli("links")).fastPaths.filter((f: { phase: string }) => f.phase === "up").length;
  const waitFor = async (cond: () => Promise<boolean>, what: string, ms = 20_000) => {
    const end = Date.now() + ms;
    while (!(await cond())) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const starFrames = async () => {
    const s = await cli("status");
    return Object.entries(s.ports as Record<string, { rxFrames: number }>)
      .filter(([k]) => k.startsWith("host:")).reduce((n, [, c]) => n + c.rxFrames, 0);
  };

  let phase = await Phase.start(lab, "all", allPeers, { kbps: 4000 });
  await t.step(
    "all-to-all: a direct link per host pair, and the VM traffic leaves the star",
    async () => {
      await waitFor(async () => (await fastUp()) === 6, "six fast paths");
      await waitFor(
        async () => (await cli("adapt")).reactions.length > 0,
        "rules active everywhere",
      );
      const paths = await cli("paths");
      assertEquals(paths.length, 6);
      assert(paths.every((p: { path: string }) => p.path === "direct"), JSON.stringify(paths));
      const before = await starFrames();
      await new Promise((r) => setTimeout(r, 1000));
      const grown = (await starFrames()) - before;
      // The generators send about 1,250 frames/s per host; on the star only stray frames remain.
      assert(grown < 200, `the star still carried ${grown} frames in 1 s`);
    },
  );

  await t.step("ring: only the ring's four links remain", async () => {
    await phase.stop();
    phase = await Phase.start(lab, "ring", ringPeers, { kbps: 4000 });
    await waitTopology(lab, (t) => t.classification.kind === "ring", 20_000);
    await waitFor(async () => (await cli("links")).fastPaths.length === 4, "four fast paths");
    const pairs = (await cli("links")).fastPaths.map((f: { hosts: string[] }) => f.hosts.join("-"))
      .sort();
    assertEquals(pairs, ["h1-h2", "h1-h4", "h2-h3", "h3-h4"]);
  });

  await t.step(
    "killing a direct link's TCP connection: traffic continues through the proxy",
    async () => {
      const [vm1, vm2] = lab.vms;
      await lab.exec(lab.hostNs(1), ["ss", "-K", "dst", lab.hostIp(2)], false);
      const ping = await lab.ping(vm1.ns, vm2.ip, { count: 10, intervalS: 0.1, timeoutS: 1 });
      assert(ping.received >= 9, `VM 1 -> VM 2 after the cut: ${ping.output}`);
      const h1 = lab.processes.find((p) => p.name === "h1")!;
      await lab.waitForLog(h1, /Fast path to h2 closed/, 5000);
    },
  );
});
