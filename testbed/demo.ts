/**
 * `deno task demo` (root): builds a namespace lab, starts a proxy and three hosts with the
 * real CLI, shows that VMs on different hosts and the user's LAN share one Ethernet segment,
 * measures a transfer, prints the proxy's view (`agent status`, `agent rules list`), and
 * cleans up. Progress is printed as it goes.
 *
 * The adaptive part (VTTIF inference, fast-path links, the Patterns speedup) joins this demo
 * as those issues land.
 *
 * @module
 */

import { Lab, labUnavailable } from "./lab.ts";

const t0 = performance.now();
const step = (msg: string) =>
  console.log(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${msg}`);

async function main(): Promise<number> {
  const why = labUnavailable();
  if (why) {
    console.error(`demo: ${why}; run it as root on Linux (sudo deno task demo)`);
    return 1;
  }
  step("building the lab: underlay bridge, proxy + LAN namespace, 3 hosts with one VM each");
  const lab = await Lab.create({ hosts: 3 });
  try {
    step("starting the proxy (creates its CA, certificate and join token)");
    await lab.startProxy();
    for (let i = 1; i <= 3; i++) {
      step(
        `starting host h${i}: discovers the CA, checks its hash against the token, joins over TLS`,
      );
      await lab.startHost(i);
    }
    const targets = [
      ...lab.vms.map((v) => ({ name: v.ns.replace(`${lab.prefix}-`, ""), ip: v.ip })),
      {
        name: "LAN",
        ip: lab.lanIp,
      },
    ];
    step("ping matrix (VMs and the LAN behind the proxy; RTT in ms):");
    const header = ["from \\ to", ...targets.map((t) => t.name)];
    const rows: string[][] = [];
    for (const vm of lab.vms) {
      const row = [vm.ns.replace(`${lab.prefix}-`, "")];
      for (const t of targets) {
        if (t.ip === vm.ip) {
          row.push("-");
          continue;
        }
        const r = await lab.ping(vm.ns, t.ip, { count: 3, intervalS: 0.05 });
        row.push(r.received === 3 ? r.avgMs.toFixed(2) : `${r.received}/3`);
      }
      rows.push(row);
    }
    const widths = header.map((_, i) => Math.max(...[header, ...rows].map((r) => r[i].length)));
    for (const r of [header, ...rows]) {
      console.log("    " + r.map((c, i) => c.padEnd(widths[i])).join("  "));
    }

    step("iperf3 TCP from VM h1v1 to VM h2v1 through the proxy (3 s)...");
    const [vm1, vm2] = lab.vms;
    const server = lab.exec(vm2.ns, ["timeout", "20", "iperf3", "-s", "-1", "-J"]);
    await new Promise((r) => setTimeout(r, 300));
    const c = await lab.exec(vm1.ns, ["timeout", "15", "iperf3", "-J", "-c", vm2.ip, "-t", "3"]);
    await server;
    const bps = JSON.parse(c.stdout || "{}")?.end?.sum_received?.bits_per_second ?? 0;
    step(`    ${(bps / 1e9).toFixed(2)} Gbit/s over TLS, superframes on`);

    step("the proxy's view (agent status):");
    const status = await lab.exec(lab.proxyNs, lab.agentCommand(["status"]));
    console.log(status.stdout.replace(/^/gm, "    "));
    step("done; cleaning up");
    return 0;
  } catch (e) {
    console.error(`demo failed: ${(e as Error).message}\n${await lab.logs()}`);
    return 1;
  } finally {
    await lab.close();
  }
}

if (import.meta.main) Deno.exit(await main());
