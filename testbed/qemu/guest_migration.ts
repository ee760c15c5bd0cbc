/**
 * QEMU's own live migration of a lab guest, as libvirt drives it, for whichever process manages
 * the guest at the time (the lab's `QemuGuest.migrate`, or the proxy's migration hook in a
 * process of its own); the guest's record (guest_dir.ts) says where it runs and is updated here.
 *
 *     destination QEMU -incoming defer on TO's bridge -> on its monitor (kept open): the
 *       capabilities (plain, or multifd + zstd for a slow link), migrate-incoming
 *       tcp:TO-UNDERLAY:PORT -> on the source's monitor: the same capabilities, `migrate`
 *       -> query-migrate until completed (or failed)
 *       -> RESUME on the destination (QEMU then announces the guest with RARP)
 *       -> record: the guest runs on TO -> `quit` the paused source
 *     any failure: the destination is killed, the record untouched, the guest runs on as before
 *
 * @module
 */

import { type GuestRecord, nextGeneration, writeGuestRecord } from "./guest_dir.ts";
import {
  currentInstance,
  launchInstance,
  migrationPort,
  type QemuInstance,
  retire,
  underlayAddress,
  withMonitor,
} from "./qemu_instance.ts";
import type { QmpClient } from "./qmp.ts";

/** One completed live migration, timed by QEMU's own clocks. */
export interface Migration {
  from: number;
  to: number;
  /** When `migrate` was issued, ms since the epoch. */
  startedAt: number;
  /** When the guest resumed on the destination (QEMU's RESUME event), ms since the epoch. */
  completedAt: number;
  /** QEMU's measured downtime (guest paused), ms. */
  downtimeMs: number;
  /** Whole migration, ms, as QEMU reports it. */
  totalMs: number;
  /** Bytes QEMU counted as sent (RAM and device state; before compression). */
  transferredBytes: number;
}

/** How an unfinished migration ends. */
export type AbortMode = "cancel" | "kill-destination";

interface MigrationStatus {
  status: string;
  "error-desc"?: string;
  downtime?: number;
  "total-time"?: number;
  ram?: { transferred?: number };
}

/** A destination QEMU for `rec` on host `to`, started with `-incoming defer`. */
async function startDestination(
  rec: GuestRecord,
  to: number,
): Promise<{ dest: QemuInstance; uri: string }> {
  if (to === rec.host) {
    throw new RangeError(`Cannot migrate guest ${rec.index}: it is already on h${to}`);
  }
  const uri = `tcp:${await underlayAddress(rec.prefix, to)}:${migrationPort(rec)}`;
  const generation = await nextGeneration(rec);
  return { dest: await launchInstance(rec, { host: to, generation, incoming: "defer" }), uri };
}

/**
 * Sets what both ends of a migration must agree on: plain, or RAM compressed with zstd over
 * parallel streams (multifd), as `virsh migrate --parallel --compressed --comp-methods zstd`
 * does for a slow link (a fresh guest's RAM is mostly kernel text, which compresses 3:1).
 */
async function configure(qmp: QmpClient, compressed: boolean): Promise<void> {
  await qmp.execute("migrate-set-capabilities", {
    capabilities: [{ capability: "multifd", state: compressed }],
  });
  if (compressed) await qmp.execute("migrate-set-parameters", { "multifd-compression": "zstd" });
}

/** The destination listens for the migration at `uri`, configured like the source. */
async function listen(qmp: QmpClient, uri: string, compressed: boolean): Promise<void> {
  await configure(qmp, compressed);
  await qmp.execute("migrate-incoming", { uri });
}

/**
 * Live-migrates the guest of `rec` to host `to` (compressed when its record says so); returns
 * once it runs there, its record says so and the source has quit. Throws (with the guest still
 * on its old host) when the migration does not complete within `timeoutMs` (default 5 min: a
 * slow link carries RAM slowly).
 */
export async function migrateGuest(
  rec: GuestRecord,
  to: number,
  timeoutMs = 300_000,
): Promise<Migration> {
  const source = currentInstance(rec);
  const { dest, uri } = await startDestination(rec, to);
  let m: Migration;
  try {
    // The destination's monitor is watched from before the start, so RESUME cannot be missed.
    m = await withMonitor(dest, async (destQmp) => {
      await listen(destQmp, uri, rec.compressMigration);
      return await withMonitor(source, async (sourceQmp) => {
        await configure(sourceQmp, rec.compressMigration);
        const startedAt = Date.now();
        await sourceQmp.execute("migrate", { uri });
        const done = await pollMigration(sourceQmp, ["completed"], timeoutMs);
        const resumed = await destQmp.waitEvent("RESUME", 10_000);
        return {
          from: rec.host,
          to,
          startedAt,
          completedAt: resumed.at,
          downtimeMs: done.downtime ?? NaN,
          totalMs: done["total-time"] ?? NaN,
          transferredBytes: done.ram?.transferred ?? NaN,
        };
      });
    });
  } catch (e) {
    await retire(dest, true);
    throw new Error(`Cannot migrate guest ${rec.index} to h${to}: ${(e as Error).message}`);
  }
  await writeGuestRecord({ ...rec, host: to, generation: dest.generation });
  await retire(source);
  return m;
}

/**
 * Starts a migration of `rec`'s guest to `to` and ends it before it completes: `cancel`
 * (`migrate_cancel`, as `virsh migrate` does on Ctrl-C) or `kill-destination` (the destination
 * QEMU dies, so the migration fails). Bandwidth is throttled meanwhile so it cannot finish
 * first. The guest stays where it was and keeps running; returns the migration's final status.
 */
export function abortMigration(rec: GuestRecord, to: number, mode: AbortMode): Promise<string> {
  return withMonitor(currentInstance(rec), async (qmp) => {
    const params = await qmp.execute<{ "max-bandwidth": number }>("query-migrate-parameters");
    await qmp.execute("migrate-set-parameters", { "max-bandwidth": 1 << 20 });
    // Plain: the bandwidth limit holds back the main stream only, not multifd's.
    await configure(qmp, false);
    const { dest, uri } = await startDestination(rec, to);
    try {
      await withMonitor(dest, (destQmp) => listen(destQmp, uri, false));
      await qmp.execute("migrate", { uri });
      await pollMigration(qmp, ["active"], 10_000, (s) => (s.ram?.transferred ?? 0) > 0);
      if (mode === "cancel") {
        await qmp.execute("migrate_cancel");
        await retire(dest, true);
        return (await pollMigration(qmp, ["cancelled", "failed"], 10_000)).status;
      }
      await retire(dest, true);
      return (await pollMigration(qmp, ["failed", "cancelled"], 30_000)).status;
    } finally {
      await retire(dest, true);
      await qmp.execute("migrate-set-parameters", { "max-bandwidth": params["max-bandwidth"] });
    }
  });
}

/** Polls `query-migrate` every 10 ms until its status is one of `want` (and `also` holds). */
async function pollMigration(
  qmp: QmpClient,
  want: string[],
  timeoutMs: number,
  also: (s: MigrationStatus) => boolean = () => true,
): Promise<MigrationStatus> {
  const until = Date.now() + timeoutMs;
  let last: MigrationStatus = { status: "none" };
  while (Date.now() < until) {
    last = await qmp.execute<MigrationStatus>("query-migrate");
    if (want.includes(last.status) && also(last)) return last;
    if (["failed", "cancelled"].includes(last.status) && !want.includes(last.status)) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(
    `Cannot see the migration reach ${want.join("/")}: it is ${last.status}${
      last["error-desc"] ? ` (${last["error-desc"]})` : ""
    }`,
  );
}
