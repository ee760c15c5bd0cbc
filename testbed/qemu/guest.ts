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
 * Every QEMU runs as a lab process, so the lab's `close()` kills it and its TAP goes with it.
 *
 * @module
 */

import type { Lab, LabProcess } from "../lab.ts";
import { buildGuestImage, GUEST_READY } from "./guest_image.ts";
import { GuestConsole, type GuestRun } from "./guest_console.ts";
import { QmpClient } from "./qmp.ts";

/** Where and what a guest is. */
export interface GuestOptions {
  /** Host number (1-based) whose bridge the guest's NIC joins. */
  host: number;
  /** Guest number, 1-9: picks its MAC (02:88:00:01:00:0N), IP (10.88.0.10N) and ports. */
  index: number;
  /** Guest RAM; 128 MiB moves in about a second. */
  memoryMiB?: number;
  /** Size of the guest's /www/blob, served on port 80. */
  blobKiB?: number;
}

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
}

/** How an unfinished migration ends. */
export type AbortMode = "cancel" | "kill-destination";

interface Instance {
  host: number;
  proc: LabProcess;
  qmp: QmpClient;
  tap: string;
  consolePath: string;
  consoleLog: string;
}

interface MigrationStatus {
  status: string;
  "error-desc"?: string;
  downtime?: number;
  "total-time"?: number;
  ram?: { transferred?: number };
}

/** A running QEMU guest. */
export class QemuGuest {
  readonly lab: Lab;
  readonly index: number;
  readonly mac: string;
  readonly ip: string;
  readonly #opts: Required<GuestOptions>;
  #now: Instance;
  #console: GuestConsole | null = null;
  #generation = 0;

  private constructor(lab: Lab, opts: Required<GuestOptions>, first: Instance) {
    this.lab = lab;
    this.index = opts.index;
    this.mac = `02:88:00:01:00:${opts.index.toString(16).padStart(2, "0")}`;
    this.ip = `10.88.0.${100 + opts.index}`;
    this.#opts = opts;
    this.#now = first;
  }

  /** The host whose bridge the running guest is on. */
  get host(): number {
    return this.#now.host;
  }

  /** Name of the guest's TAP on its current host. */
  get tap(): string {
    return this.#now.tap;
  }

  /** Boots a guest on `options.host`; returns once its network and HTTP service are up. */
  static async start(lab: Lab, options: GuestOptions): Promise<QemuGuest> {
    if (!(options.index >= 1 && options.index <= 9)) {
      throw new RangeError(`Cannot start guest ${options.index}: the index must be 1-9`);
    }
    const opts = { memoryMiB: 128, blobKiB: 4096, ...options };
    const mac = `02:88:00:01:00:${opts.index.toString(16).padStart(2, "0")}`;
    const first = await launch(lab, opts, mac, 0, null);
    const guest = new QemuGuest(lab, opts, first);
    await waitForText(first.consoleLog, GUEST_READY, 60_000, first.proc);
    return guest;
  }

  /** Runs a shell command inside the guest (serial console). */
  async exec(command: string, timeoutMs = 30_000): Promise<GuestRun> {
    this.#console ??= await GuestConsole.connect(this.#now.consolePath);
    return await this.#console.run(command, timeoutMs);
  }

  /** QEMU's run state of the current instance (`running`, `paused`, `postmigrate`, ...). */
  async runState(): Promise<string> {
    return (await this.#now.qmp.execute<{ status: string }>("query-status")).status;
  }

  /**
   * Live-migrates the guest to host `to` as libvirt does: destination QEMU with `-incoming` on
   * `to`, its TAP on that bridge, `migrate` on the source, wait for completion and the guest's
   * RESUME on the destination, then quit the paused source.
   */
  async migrate(to: number): Promise<Migration> {
    const from = this.#now.host;
    const dest = await this.#startDestination(to);
    const source = this.#now;
    const startedAt = Date.now();
    try {
      await source.qmp.execute("migrate", { uri: `tcp:${this.lab.hostIp(to)}:${this.#port}` });
      const done = await pollMigration(source.qmp, ["completed", "failed", "cancelled"], 60_000);
      if (done.status !== "completed") {
        throw new Error(
          `Cannot migrate guest ${this.index} to h${to}: ${done.status}: ${
            done["error-desc"] ?? ""
          }`,
        );
      }
      const resumed = await dest.qmp.waitEvent("RESUME", 10_000);
      await this.#retire(source);
      this.#now = dest;
      return {
        from,
        to,
        startedAt,
        completedAt: resumed.at,
        downtimeMs: done.downtime ?? NaN,
        totalMs: done["total-time"] ?? NaN,
      };
    } catch (e) {
      await this.#retire(dest, true);
      throw e;
    }
  }

  /**
   * Starts a migration to `to` and ends it before it completes: `cancel` (`migrate_cancel`, as
   * `virsh migrate` does on Ctrl-C) or `kill-destination` (the destination QEMU dies, so the
   * migration fails). Bandwidth is throttled meanwhile so it cannot finish first. The guest
   * stays where it was and keeps running; returns the migration's final status.
   */
  async abortedMigration(to: number, mode: AbortMode): Promise<string> {
    const source = this.#now;
    const params = await source.qmp.execute<{ "max-bandwidth": number }>(
      "query-migrate-parameters",
    );
    await source.qmp.execute("migrate-set-parameters", { "max-bandwidth": 1 << 20 });
    const dest = await this.#startDestination(to);
    try {
      await source.qmp.execute("migrate", { uri: `tcp:${this.lab.hostIp(to)}:${this.#port}` });
      await pollMigration(source.qmp, ["active"], 10_000, (s) => (s.ram?.transferred ?? 0) > 0);
      if (mode === "cancel") {
        await source.qmp.execute("migrate_cancel");
        await this.#retire(dest, true);
        return (await pollMigration(source.qmp, ["cancelled", "failed"], 10_000)).status;
      }
      dest.proc.child.kill("SIGKILL");
      await dest.proc.status;
      return (await pollMigration(source.qmp, ["failed", "cancelled"], 30_000)).status;
    } finally {
      await this.#retire(dest, true);
      await source.qmp.execute("migrate-set-parameters", {
        "max-bandwidth": params["max-bandwidth"],
      });
    }
  }

  /** Quits the guest's QEMU (its TAP goes with it). */
  async stop(): Promise<void> {
    await this.#retire(this.#now);
  }

  get #port(): number {
    return 4400 + this.index;
  }

  async #startDestination(to: number): Promise<Instance> {
    if (to === this.#now.host) {
      throw new RangeError(`Cannot migrate guest ${this.index}: it is already on h${to}`);
    }
    return await launch(
      this.lab,
      { ...this.#opts, host: to },
      this.mac,
      ++this.#generation,
      `tcp:${this.lab.hostIp(to)}:${this.#port}`,
    );
  }

  /** Ends an instance: `quit` on its monitor (SIGKILL when that fails or `kill` is set). */
  async #retire(i: Instance, kill = false): Promise<void> {
    if (i === this.#now && this.#console) {
      await this.#console.close();
      this.#console = null;
    }
    if (!kill && !i.qmp.closed) await i.qmp.execute("quit").catch(() => {});
    const t = setTimeout(() => {
      try {
        i.proc.child.kill("SIGKILL");
      } catch { /* gone */ }
    }, kill ? 0 : 5000);
    await i.proc.status;
    clearTimeout(t);
    await i.qmp.close();
  }
}

/** Starts one QEMU process for the guest on `opts.host`, its TAP enslaved to br-vm. */
async function launch(
  lab: Lab,
  opts: Required<GuestOptions>,
  mac: string,
  generation: number,
  incoming: string | null,
): Promise<Instance> {
  const image = await buildGuestImage(lab.dir);
  const tag = `g${opts.index}x${generation}`;
  const tap = `q${tag}`;
  const qmpPath = `${lab.dir}/${tag}.qmp`;
  const consolePath = `${lab.dir}/${tag}.console`;
  const consoleLog = `${lab.dir}/${tag}.console.log`;
  const ip = `10.88.0.${100 + opts.index}/24`;
  const args = [
    "qemu-system-x86_64",
    "-name",
    `vnet-guest-${opts.index}`,
    "-accel",
    "tcg",
    "-m",
    String(opts.memoryMiB),
    "-nodefaults",
    "-no-user-config",
    "-display",
    "none",
    "-no-reboot",
    "-kernel",
    image.kernel,
    "-initrd",
    image.initrd,
    "-append",
    `console=ttyS0 loglevel=3 panic=-1 vnet.ip=${ip} vnet.blob=${opts.blobKiB}`,
    "-chardev",
    `socket,id=con,path=${consolePath},server=on,wait=off,logfile=${consoleLog}`,
    "-serial",
    "chardev:con",
    "-qmp",
    `unix:${qmpPath},server=on,wait=off`,
    "-netdev",
    `tap,id=net0,ifname=${tap},script=no,downscript=no`,
    "-device",
    `virtio-net-pci,netdev=net0,mac=${mac},romfile=`,
    ...(incoming ? ["-incoming", incoming] : []),
  ];
  const ns = lab.hostNs(opts.host);
  const proc = await lab.spawn(`qemu-${tag}-h${opts.host}`, ns, args);
  let qmp: QmpClient;
  try {
    qmp = await QmpClient.connect(qmpPath, 20_000);
  } catch (e) {
    const log = await Deno.readTextFile(proc.logPath).catch(() => "");
    throw new Error(`Cannot start QEMU for guest ${opts.index}: ${(e as Error).message}\n${log}`);
  }
  for (const cmd of [["master", "br-vm"], ["mtu", String(lab.opts.mtu)], ["up"]]) {
    const r = await lab.exec(ns, ["ip", "link", "set", tap, ...cmd]);
    if (r.code !== 0) {
      throw new Error(`Cannot attach ${tap} to h${opts.host}'s bridge: ${r.stderr.trim()}`);
    }
  }
  return { host: opts.host, proc, qmp, tap, consolePath, consoleLog };
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

/** Waits until the file at `path` contains `text`; fails early when `proc` exits. */
async function waitForText(
  path: string,
  text: string,
  timeoutMs: number,
  proc: LabProcess,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  let exited = false;
  proc.status.then(() => exited = true);
  while (Date.now() < until && !exited) {
    if ((await Deno.readTextFile(path).catch(() => "")).includes(text)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  const console = await Deno.readTextFile(path).catch(() => "(no console output)");
  const log = await Deno.readTextFile(proc.logPath).catch(() => "");
  throw new Error(
    `Cannot see "${text}" on the guest's console within ${timeoutMs} ms${
      exited ? " (QEMU exited)" : ""
    }:\n${console.slice(-2000)}\n${log.slice(-1000)}`,
  );
}
