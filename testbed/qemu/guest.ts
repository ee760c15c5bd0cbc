/**
 * QEMU guests as VMs of the lab, managed the way libvirt manages them: QEMU creates a TAP
 * (`-netdev tap,script=no`) for the guest's virtio-net NIC, the manager enslaves it to the
 * host's bridge, and a live migration is QEMU's own: a destination QEMU started with
 * `-incoming`, `migrate` on the source's monitor, the guest resumed on the destination (which
 * announces it with RARP), then the paused source quit.
 *
 *     host ns i: br-vm ── TAP qgNxG ── QEMU (TCG) ── virtio-net ── guest eth0
 *                    └─── vnet0 ── agent --join
 *     migration: source QEMU ──tcp over the lab's underlay──> QEMU -incoming on host j
 *
 * A guest's state lives in its directory (guest_dir.ts), not in this object: the proxy's
 * migration hook, another process, may move the guest, and this object then finds it on its
 * new host (its console reconnected to the new instance). Every QEMU is a daemon named by a
 * pid file; the lab's close() kills them all, whoever started them.
 *
 * @module
 */

import type { Lab } from "../lab.ts";
import {
  type GuestRecord,
  instancePaths,
  killLabGuests,
  qemuLabDir,
  readGuestRecord,
  writeGuestRecord,
} from "./guest_dir.ts";
import { buildGuestImage, GUEST_READY } from "./guest_image.ts";
import { GuestConsole, type GuestRun } from "./guest_console.ts";
import {
  currentInstance,
  launchInstance,
  retire,
  waitConsole,
  withMonitor,
} from "./qemu_instance.ts";
import { abortMigration, type AbortMode, migrateGuest, type Migration } from "./guest_migration.ts";

export type { AbortMode, Migration } from "./guest_migration.ts";

/** Where and what a guest is. */
export interface GuestOptions {
  /** Host number (1-based) whose bridge the guest's NIC joins. */
  host: number;
  /** Guest number, 1-9: picks its MAC (02:88:00:01:00:0N), IP (10.88.0.10N) and ports. */
  index: number;
  /** Guest RAM; 128 MiB moves in about a second on an unshaped link. */
  memoryMiB?: number;
  /** Size of the guest's /www/blob, served on port 80. */
  blobKiB?: number;
  /** Live migrations compress RAM (multifd with zstd), for slow links. Default false. */
  compressMigration?: boolean;
}

/** Labs whose close() already kills their guests. */
const cleaned = new WeakSet<Lab>();

/** A running QEMU guest. */
export class QemuGuest {
  readonly lab: Lab;
  readonly index: number;
  readonly mac: string;
  readonly ip: string;
  #console: GuestConsole | null = null;
  /** The generation of the instance whose console `#console` is. */
  #consoleOf = -1;

  private constructor(lab: Lab, rec: GuestRecord) {
    this.lab = lab;
    this.index = rec.index;
    this.mac = rec.mac;
    this.ip = rec.ip;
  }

  /** The guest's record: where it runs now, whoever moved it. */
  get #record(): GuestRecord {
    const rec = readGuestRecord(this.lab.prefix, this.mac);
    if (!rec) throw new Error(`Cannot find guest ${this.index}: its record is gone`);
    return rec;
  }

  /** The host whose bridge the running guest is on. */
  get host(): number {
    return this.#record.host;
  }

  /** Name of the guest's TAP on its current host. */
  get tap(): string {
    const rec = this.#record;
    return instancePaths(rec, rec.generation).tap;
  }

  /** Boots a guest on `options.host`; returns once its network and HTTP service are up. */
  static async start(lab: Lab, options: GuestOptions): Promise<QemuGuest> {
    if (!(options.index >= 1 && options.index <= 9)) {
      throw new RangeError(`Cannot start guest ${options.index}: the index must be 1-9`);
    }
    if (!cleaned.has(lab)) {
      cleaned.add(lab);
      lab.atClose((keepFiles) => killLabGuests(lab.prefix, keepFiles));
    }
    await Deno.mkdir(qemuLabDir(lab.prefix), { recursive: true });
    const image = await buildGuestImage(qemuLabDir(lab.prefix));
    const rec: GuestRecord = {
      prefix: lab.prefix,
      index: options.index,
      mac: `02:88:00:01:00:${options.index.toString(16).padStart(2, "0")}`,
      ip: `10.88.0.${100 + options.index}`,
      memoryMiB: options.memoryMiB ?? 128,
      blobKiB: options.blobKiB ?? 4096,
      compressMigration: options.compressMigration ?? false,
      mtu: lab.opts.mtu,
      ...image,
      host: options.host,
      generation: 0,
    };
    await writeGuestRecord(rec);
    const first = await launchInstance(rec, { host: rec.host, generation: 0, incoming: null });
    await waitConsole(first, GUEST_READY, 60_000);
    return new QemuGuest(lab, rec);
  }

  /** Runs a shell command inside the guest (serial console of the instance running it now). */
  async exec(command: string, timeoutMs = 30_000): Promise<GuestRun> {
    const rec = this.#record;
    if (this.#console === null || this.#consoleOf !== rec.generation) {
      await this.#console?.close();
      this.#console = null;
      this.#console = await GuestConsole.connect(instancePaths(rec, rec.generation).console);
      this.#consoleOf = rec.generation;
    }
    return await this.#console.run(command, timeoutMs);
  }

  /** QEMU's run state of the current instance (`running`, `paused`, `postmigrate`, ...). */
  async runState(): Promise<string> {
    const state = await withMonitor(
      currentInstance(this.#record),
      (qmp) => qmp.execute<{ status: string }>("query-status"),
    );
    return state.status;
  }

  /**
   * Live-migrates the guest to host `to` as libvirt does: destination QEMU with `-incoming` on
   * `to`, its TAP on that bridge, `migrate` on the source, wait for completion and the guest's
   * RESUME on the destination, then quit the paused source.
   */
  migrate(to: number): Promise<Migration> {
    return migrateGuest(this.#record, to);
  }

  /**
   * Starts a migration to `to` and ends it before it completes (see {@linkcode abortMigration});
   * the guest stays where it was and keeps running. Returns the migration's final status.
   */
  abortedMigration(to: number, mode: AbortMode): Promise<string> {
    return abortMigration(this.#record, to, mode);
  }

  /** Quits the guest's QEMU (its TAP goes with it). */
  async stop(): Promise<void> {
    await this.#console?.close();
    this.#console = null;
    await retire(currentInstance(this.#record));
  }
}
