/**
 * The TypeScript floor relay is a measuring stick in bench:dataplane; a stick that dropped
 * frames or mangled superframes would make every comparison with it wrong. Root only.
 */
import { assert, assertEquals } from "../support/assert.ts";
import { labTest } from "../support/lab_test.ts";
import { startFloorRelay } from "../../testbed/baselines.ts";
import type { Lab } from "../../testbed/lab.ts";
import { iperf } from "../../testbed/iperf.ts";

/** Bytes a 1-second iperf3 TCP stream moved from VM 1 to VM 2; throws when it failed. */
async function streamBytes(lab: Lab): Promise<number> {
  const [vm1, vm2] = lab.vms;
  return (await iperf(lab, { fromNs: vm1.ns, toNs: vm2.ns, toIp: vm2.ip, seconds: 1 })).bytes;
}

for (const [offload, tls] of [[true, false], [false, false], [true, true], [false, true]]) {
  labTest(
    `floor relay: pings and a TCP stream cross it, superframes ${offload ? "on" : "off"}, ${
      tls ? "TLS by OpenSSL" : "plain TCP"
    }`,
    { hosts: 2, lan: false },
    async (lab) => {
      const [vm1, vm2] = lab.vms;
      const floor = await startFloorRelay(lab, { offload, tls });
      if (tls) {
        const log = await Deno.readTextFile(floor.daemons[1].logPath);
        assert(log.includes("floor relay up (TLS)"), log);
      }
      try {
        assert(await lab.waitPing(vm1.ns, vm2.ip, 10_000), "no ping crossed the floor relay");
        // The stick drops a packet the kernel refuses, as a full TAP queue does: under the
        // parallel test suite 3 of 20 were lost once. Most must cross.
        const r = await lab.ping(vm1.ns, vm2.ip, { count: 20, intervalS: 0.01 });
        assert(r.received >= 16, `${r.received} of 20 pings crossed\n${r.output}`);
        // TCP checks every segment's checksum: a stream that moves data was carried intact,
        // superframes included (the VMs' stack sends 64 KB TSO frames when they are on).
        const bytes = await streamBytes(lab);
        assert(bytes > 1_000_000, `only ${bytes} bytes crossed in 1 s`);
      } finally {
        await floor.stop();
      }
      // Stopping it ends the relay: nothing else joins the VMs, so a later bench row (the
      // agents) cannot be measured through a relay left behind.
      const after = await lab.ping(vm1.ns, vm2.ip, { count: 2, intervalS: 0.2 });
      assertEquals(after.received, 0, "pings still cross after the floor relay was stopped");
    },
  );
}
