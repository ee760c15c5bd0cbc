/**
 * Migration as adaptation with real guests: two QEMU guests that talk heavily, placed across a
 * slow link, an application measured apart, then the proxy moving one guest next to the other
 * through its migration hook with QEMU's own live migration (testbed/placement_hook.ts), and
 * the application measured again. Shared by tests/lab/qemu_placement_test.ts and
 * bench/adapt_migration_bench.ts.
 *
 *     sites  h1 (and the proxy) | h2, whose uplink is shaped to 50 Mbit/s
 *     slots  h1 holds 2 VMs, h2 one: the proxy may only bring guest 2 to guest 1
 *     app    guest 1 fetches guest 2's blob (busybox wget from its httpd), timed in guest 1
 *
 *     boot both -> fetches timed apart (across the shaped link)
 *       -> fetches in a loop; the proxy advises; migration on -> hook: live migration h2 -> h1
 *       -> kept -> migration off -> fetches timed with both guests on h1's bridge
 *
 * The live migration itself crosses the slow link too (RAM from h2 to h1, compressed), while
 * the application keeps running: its time is part of what the figures show. Why 50 Mbit/s:
 * under TCG, QEMU 7.2 resumed a corrupted guest here after long live migrations while its
 * network was busy (its kernel hit a broken list within seconds): all 6 plain 29-63 s moves
 * under load, 2 of about 22 compressed 7-12 s moves at 20 Mbit/s; none of 3 without load and
 * none of 16 compressed 3-4 s moves at 50 Mbit/s. The checks of the same boot catch one.
 *
 * @module
 */

import type { Lab } from "../lab.ts";
import { migrateWhileRunning, type PlacementSites } from "../placement_lab.ts";
import type { MoveRecord } from "../../proxy/migrator.ts";
import { QemuGuest } from "./guest.ts";

/** Guest 1 on h1 fetches from guest 2 on h2, whose uplink is slow (see the module for why 50). */
export const GUEST_PAIR: PlacementSites & { blobKiB: number; runs: number } = {
  description: "two QEMU guests (h1 | h2 behind a 50 Mbit/s uplink); guest 1 fetches guest 2's " +
    "2 MiB blob over HTTP, again and again",
  hosts: 2,
  slots: [2, 1],
  shape: (lab) => [[lab.hostNs(2), 50]],
  vmsPerHost: 0,
  blobKiB: 2048,
  runs: 3,
};

/** What one run of the scenario measured. */
export interface GuestPlacementResult {
  /** Each timed fetch with the guests apart, ms (guest 1's clock). */
  apartMs: number[];
  /** Each timed fetch after the move, ms. */
  placedMs: number[];
  /** The migrations the proxy made, as it recorded them. */
  moves: MoveRecord[];
  /** Where the proxy has guest 2 afterwards (`agent vms`). */
  serverHost: string | null;
  /** Guest 2's boot id and uptime (s) before and after: one boot means a live migration. */
  bootIds: [string, string];
  uptimes: [number, number];
  /** Why fetches of the load (while the proxy moved guest 2) failed; none should. */
  loadErrors: string[];
  /** Guest 1 fetched guest 2's blob intact after the move. */
  intactAfter: boolean;
  client: QemuGuest;
  server: QemuGuest;
}

/** Runs `command` in `guest`, throwing with its output when it fails. */
async function run(guest: QemuGuest, command: string, timeoutMs = 60_000): Promise<string> {
  const r = await guest.exec(command, timeoutMs);
  if (r.code !== 0) {
    throw new Error(`Cannot run "${command}" in guest ${guest.index}: exit ${r.code}: ${r.output}`);
  }
  return r.output;
}

/** One fetch of `server`'s blob by `client`, timed by the client's monotonic clock; ms. */
async function timedFetch(client: QemuGuest, server: QemuGuest): Promise<number> {
  // busybox's date has no %N and /proc/uptime counts 10 ms; the timer list says "now at N nsecs".
  const now = "sed -n '3s/[^0-9]//gp' /proc/timer_list";
  const fetch = `wget -q -O /dev/null http://${server.ip}/blob`;
  const out = await run(client, `a=$(${now}); ${fetch} && echo "took $a $(${now})"`);
  const m = /took (\d+) (\d+)/.exec(out);
  if (!m) throw new Error(`Cannot time the fetch in guest ${client.index}: ${out}`);
  return Math.round((Number(m[2]) - Number(m[1])) / 1e5) / 10;
}

async function timedFetches(client: QemuGuest, server: QemuGuest, runs: number) {
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) ms.push(await timedFetch(client, server));
  return ms;
}

/** The guest's boot id and uptime (s). */
async function bootOf(guest: QemuGuest): Promise<[string, number]> {
  const out = await run(guest, "cat /proc/sys/kernel/random/boot_id /proc/uptime");
  const [id, uptime] = out.split("\n");
  return [id.trim(), Number(uptime.split(" ")[0])];
}

/** Boots the pair in `lab` (a {@linkcode placementLab} of `s`) and measures it; see the module. */
export async function measureGuestPlacement(
  lab: Lab,
  s: typeof GUEST_PAIR,
  progress: (msg: string) => void = () => {},
): Promise<GuestPlacementResult> {
  progress("booting the guests...");
  // The move crosses the slow link too, so it is compressed (57 MB of RAM to send become ~17).
  const opts = { blobKiB: s.blobKiB, compressMigration: true };
  const [client, server] = await Promise.all([
    QemuGuest.start(lab, { host: 1, index: 1, ...opts }),
    QemuGuest.start(lab, { host: 2, index: 2, ...opts }),
  ]);
  await run(client, `ping -c 1 -W 5 ${server.ip}`); // ARP and the overlay's MAC tables
  const [idBefore, upBefore] = await bootOf(server);
  const apartMs = await timedFetches(client, server, s.runs);
  progress(`  apart: ${apartMs.join(", ")} ms; migration on while guest 1 fetches...`);
  const loadErrors: string[] = [];
  const moves = await migrateWhileRunning(lab, async (signal) => {
    // A fetch that fails (none should) is counted; it must not end the load the proxy watches.
    while (!signal.aborted) {
      await timedFetch(client, server).catch((e) => {
        loadErrors.push((e as Error).message);
        return new Promise((r) => setTimeout(r, 200));
      });
    }
  });
  const placedMs = await timedFetches(client, server, s.runs);
  progress(`  placed: ${placedMs.join(", ")} ms`);
  const [idAfter, upAfter] = await bootOf(server);
  const digest = await run(client, `wget -q -O - http://${server.ip}/blob | sha256sum`);
  const intactAfter = digest.split(" ")[0] === (await run(server, "cat /www/blob.sha256")).trim();
  const vms: { mac: string; host: string }[] = await lab.agentJson("vms");
  return {
    apartMs,
    placedMs,
    moves,
    loadErrors,
    serverHost: vms.find((v) => v.mac === server.mac)?.host ?? null,
    bootIds: [idBefore, idAfter],
    uptimes: [upBefore, upAfter],
    intactAfter,
    client,
    server,
  };
}
