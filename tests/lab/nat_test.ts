/**
 * Root-only: fast paths across NATs, firewalls and an IPv6-only underlay (testbed/nat.ts).
 * Per scenario two hosts whose VMs talk: the pair must go direct the way the scenario allows
 * (the side that cannot be reached dials; both behind NATs punch), or stay on the star and say
 * every reason. A port forward declared with --advertise is used once the proxy reached the
 * host through it; an advertised address that does not lead to the host is never handed out.
 */
import { assert, assertEquals } from "../support/assert.ts";
import { labTest } from "../support/lab_test.ts";
import type { Lab } from "../../testbed/lab.ts";
import { natUnavailable, outsideIp, portForward } from "../../testbed/nat.ts";
import {
  keepTalking,
  NAT_SCENARIOS,
  natLab,
  type NatScenario,
  pairOutcome,
} from "../../testbed/nat_scenarios.ts";

const noNft = natUnavailable();

/** Frames the proxy received from hosts so far. */
async function starFrames(lab: Lab): Promise<number> {
  const s = await lab.agentJson("status");
  return Object.entries(s.ports as Record<string, { rxFrames: number }>)
    .filter(([k]) => k.startsWith("host:")).reduce((n, [, c]) => n + c.rxFrames, 0);
}

function scenarioTest(s: NatScenario): void {
  labTest(
    `lab nat: ${s.name} -> ${s.expect}${noNft ? ` (skipped: ${noNft})` : ""}`,
    () => natLab(s),
    async (lab) => {
      if (noNft) return;
      const stop = keepTalking(lab);
      try {
        const out = await pairOutcome(lab);
        assertEquals(out.how, s.expect, out.reason);
        if (s.expect === "star") {
          for (
            const part of [
              "h2 is not reachable",
              "h1 is not reachable either",
              "hole punch between h1 and h2 failed",
              "staying on the star",
              "next try in",
            ]
          ) assert(out.reason.includes(part), `"${part}" in: ${out.reason}`);
          return;
        }
        // The VMs' traffic has left the star: pings every 50 ms, and the proxy sees next to none.
        const before = await starFrames(lab);
        await new Promise((r) => setTimeout(r, 1000));
        const grown = (await starFrames(lab)) - before;
        assert(grown < 15, `the star still carried ${grown} frames in 1 s`);
        assert(await lab.waitPing(lab.vms[1].ns, lab.vms[0].ip, 5000), "VM2 reaches VM1");
        // Outside addresses as people write them: an IPv4 host on the dual-stack listener is
        // 10.77.0.11, not ::ffff:10.77.0.11.
        const star = JSON.stringify((await lab.agentJson("links")).star);
        assert(!star.includes("::ffff:"), star);
      } finally {
        await stop();
      }
    },
  );
}

for (const s of NAT_SCENARIOS) scenarioTest(s);

labTest(
  "lab nat: --advertise of a port forward is used once verified; a false one never",
  () =>
    natLab({ name: "advertise", edges: ["open", "nat"], expect: "h1 dials" }, {
      prepare: (lab) => portForward(lab, 2, 17810, 7810),
      // h2 listens on a fixed port behind its NAT and advertises the forward; h1 advertises
      // the proxy's own join address, which is not h1 (its certificate cannot be h1's).
      hostExtra: (i) =>
        i === 2
          ? ["--listen", ":7810", "--advertise", "10.77.0.102:17810"]
          : ["--advertise", "10.77.0.1:7800"],
    }),
  async (lab) => {
    if (noNft) return;
    const stop = keepTalking(lab);
    try {
      const out = await pairOutcome(lab);
      assertEquals(out.how, "h1 dials", out.reason);
      const star = (await lab.agentJson("links")).star as {
        host: string;
        reach: { state: string; listen: string | null; reason: string };
      }[];
      const reach = Object.fromEntries(star.map((s) => [s.host, s.reach]));
      assertEquals(reach.h2.listen, `${outsideIp(lab, 2, "nat")}:17810`, reach.h2.reason);
      assert(reach.h2.reason.includes("advertised"), reach.h2.reason);
      assertEquals(reach.h1.state, "reachable");
      assertEquals(reach.h1.listen?.startsWith(lab.hostIp(1)), true, "not the false address");
    } finally {
      await stop();
    }
  },
);
