/**
 * Migration reaction time on the lab (root): VM 1 moves between hosts 1 and 2 ten times while
 * VM 3 (on host 3) pings it every 20 ms. For each move: the time from the VM's first frame on
 * the new host (the proxy's move event) to the first reply VM 3 gets from it, the proxy's own
 * time to forwarding updated on every host, and pings lost once replies resumed. Median and
 * maximum. Target: under one second, and no lost frames after the announcement.
 *
 *     usage: deno run --allow-all bench/migration_bench.ts [--moves 10]
 *
 * @module
 */

import { Lab } from "../testbed/lab.ts";
import { numberFlag, requireLab } from "./cli.ts";
import { measureMove, type MoveMeasurement } from "../testbed/migrate.ts";
import { FAST_VTTIF } from "../testbed/lab.ts";

if (import.meta.main) {
  requireLab("migration");
  const moves = numberFlag("--moves", 10);
  const lab = await Lab.create({
    hosts: 3,
    lan: false,
    proxyArgs: FAST_VTTIF,
    hostArgs: FAST_VTTIF,
  });
  const results: MoveMeasurement[] = [];
  try {
    await lab.startAll();
    await lab.waitPing(lab.vms[2].ns, lab.vms[0].ip);
    for (let m = 0; m < moves; m++) {
      const toHost = m % 2 === 0 ? 2 : 1;
      const r = await measureMove(lab, { vm: 0, toHost, observer: 2 });
      console.error(
        `move ${m + 1} to h${toHost}: recovery ${
          r.recoveryMs.toFixed(0)
        } ms, forwarding ${r.forwardingMs} ms, ` +
          `lost after recovery ${r.lostAfterRecovery}`,
      );
      results.push(r);
    }
  } finally {
    await lab.close();
  }
  const stat = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return { median: s[Math.floor(s.length / 2)], max: s[s.length - 1] };
  };
  const rec = stat(results.map((r) => r.recoveryMs));
  const fwd = stat(results.map((r) => r.forwardingMs ?? NaN));
  const lost = results.reduce((n, r) => n + r.lostAfterRecovery, 0);
  console.log("| measure | median ms | max ms |");
  console.log("|---|---:|---:|");
  console.log(
    `| first frame on the new host -> VM on a third host hears from it | ${
      rec.median.toFixed(0)
    } | ${rec.max.toFixed(0)} |`,
  );
  console.log(
    `| first frame on the new host -> forwarding updated on every host | ${fwd.median} | ${fwd.max} |`,
  );
  console.log(
    `\n${results.length} moves; pings lost after traffic resumed: ${lost}; target: under 1000 ms, none lost`,
  );
}
