/**
 * Migration reaction time on the lab (root), for namespace VMs and for QEMU guests, in one run.
 *
 * - namespace: VM 1's NIC moves between hosts 1 and 2 and it announces itself with RARP;
 *   measured from its first frame on the new host (the proxy's move event).
 * - qemu: a QEMU guest is live-migrated between hosts 1 and 2 by QEMU itself (source quit
 *   after completion, as libvirt does); measured from the guest's resumption on the
 *   destination (QEMU's RESUME event), which is what its users wait for.
 *
 * In both, VM 3 (on host 3) pings the moving VM every 20 ms. Per move: the time until VM 3
 * hears from it again, the proxy's own time to forwarding updated on every host (for that very
 * move), pings lost during the move and after traffic resumed. Target: under one second, none
 * lost after traffic resumed. A move that cannot be measured stops the run with the reason.
 *
 *     usage: deno task bench:migration [--moves 10] [--mode both|namespace|qemu]
 *
 * @module
 */

import { FAST_VTTIF, Lab } from "../testbed/lab.ts";
import { numberFlag, requireLab } from "./cli.ts";
import {
  measureMove,
  measureQemuMove,
  type MoveMeasurement,
  type QemuMoveMeasurement,
} from "../testbed/migrate.ts";
import { QemuGuest } from "../testbed/qemu/guest.ts";
import { qemuUnavailable } from "../testbed/qemu/guest_image.ts";

type Mode = "namespace" | "qemu";

function modes(): Mode[] {
  const i = Deno.args.indexOf("--mode");
  const v = i < 0 ? "both" : Deno.args[i + 1];
  if (v === "both") return ["namespace", "qemu"];
  if (v === "namespace" || v === "qemu") return [v];
  console.error(`--mode: expected both, namespace or qemu, got ${v ?? "nothing"}`);
  Deno.exit(2);
}

/** Runs `moves` moves of one kind between hosts 1 and 2 on a fresh 3-host lab. */
async function run(mode: Mode, moves: number): Promise<MoveMeasurement[]> {
  const lab = await Lab.create({
    hosts: 3,
    lan: false,
    proxyArgs: FAST_VTTIF,
    hostArgs: FAST_VTTIF,
  });
  const results: MoveMeasurement[] = [];
  try {
    await lab.startAll();
    const guest = mode === "qemu" ? await QemuGuest.start(lab, { host: 1, index: 1 }) : null;
    const target = guest?.ip ?? lab.vms[0].ip;
    if (!await lab.waitPing(lab.vms[2].ns, target)) {
      throw new Error(`Cannot start the ${mode} run: VM 3 cannot reach ${target}`);
    }
    for (let m = 0; m < moves; m++) {
      const toHost = m % 2 === 0 ? 2 : 1;
      const r: MoveMeasurement & Partial<QemuMoveMeasurement> = guest
        ? await measureQemuMove(lab, { guest, toHost, observerNs: lab.vms[2].ns })
        : await measureMove(lab, { vm: 0, toHost, observer: 2 });
      console.error(
        `${mode} move ${m + 1} to h${toHost}: heard again after ${r.recoveryMs.toFixed(0)} ms, ` +
          `forwarding ${r.forwardingMs} ms, lost ${r.lostDuringMove} during / ` +
          `${r.lostAfterRecovery} after` +
          (r.totalMs !== undefined ? `, QEMU downtime ${r.downtimeMs} ms of ${r.totalMs} ms` : ""),
      );
      results.push(r);
    }
  } finally {
    await lab.close();
  }
  return results;
}

function stat(xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  return `${s[Math.floor(s.length / 2)].toFixed(0)} / ${s[s.length - 1].toFixed(0)}`;
}

if (import.meta.main) {
  requireLab("migration");
  const moves = numberFlag("--moves", 10);
  const wanted = modes();
  const whyNoQemu = wanted.includes("qemu") ? qemuUnavailable() : null;
  if (whyNoQemu) {
    console.error(`bench:migration: the qemu mode ${whyNoQemu}`);
    Deno.exit(1);
  }
  const all = new Map<Mode, MoveMeasurement[]>();
  for (const mode of wanted) all.set(mode, await run(mode, moves));

  const from: Record<Mode, string> = {
    namespace: "first frame on the new host",
    qemu: "guest resumed on the new host (QEMU)",
  };
  console.log(
    "| VM | from | -> VM on a third host hears it, median / max ms | " +
      "-> forwarding updated everywhere, median / max ms | pings lost during / after |",
  );
  console.log("|---|---|---:|---:|---:|");
  for (const [mode, rs] of all) {
    const lostDuring = rs.reduce((n, r) => n + r.lostDuringMove, 0);
    const lostAfter = rs.reduce((n, r) => n + r.lostAfterRecovery, 0);
    console.log(
      `| ${mode} (${rs.length} moves) | ${from[mode]} | ${stat(rs.map((r) => r.recoveryMs))} | ` +
        `${stat(rs.map((r) => r.forwardingMs))} | ${lostDuring} / ${lostAfter} |`,
    );
  }
  console.log("\nTarget: heard again under 1000 ms; no pings lost after traffic resumed.");
}
