/**
 * Where a lab's QEMU guests are found by any process that knows the lab's prefix and a guest's
 * MAC: the lab that booted them, and the proxy's migration hook, a separate short-lived process
 * that moves them. libvirt keeps a domain the same way (its definition, monitor socket and pid
 * file under /run/libvirt/qemu), so whichever manager acts next picks up where the last left.
 *
 *     /tmp/PREFIX-qemu/                       the lab's guests; the lab's close() kills every
 *       guest-initrd-RELEASE.cpio             QEMU named by a pid file here, then removes it
 *       028800010002/                         one guest, by its MAC without colons
 *         guest.json                          how to launch it, and which instance runs it now
 *         g2x0.qmp g2x0.console g2x0.console.log g2x0.pid     instance 0 (the boot)
 *         g2x1.qmp ...                                         instance 1 (after a migration)
 *
 * Every QEMU is a daemon (`-daemonize -pidfile`): the destination of a migration must outlive
 * the hook that started it. Host `N` of the lab is namespace `PREFIX-hN` with bridge `br-vm`.
 * Daemons are reparented to PID 1, which may not reap them, so a zombie counts as gone.
 *
 * @module
 */

/** What launching the guest takes, and where it runs now; `guest.json`. */
export interface GuestRecord {
  /** The lab's prefix: host `N` is namespace `PREFIX-hN`. */
  prefix: string;
  /** Guest number, 1-9. */
  index: number;
  mac: string;
  /** Overlay address, without the prefix length (/24). */
  ip: string;
  memoryMiB: number;
  blobKiB: number;
  /** Live migrations compress RAM (multifd with zstd), as for a slow link. */
  compressMigration: boolean;
  /** MTU of the host-side TAP. */
  mtu: number;
  kernel: string;
  initrd: string;
  /** Host number of the instance that runs the guest now. */
  host: number;
  /** That instance's generation: 0 at boot, one more per migration attempt. */
  generation: number;
}

/** The files and names of one QEMU instance of a guest. */
export interface InstancePaths {
  /** `gNxG`: guest N, generation G. */
  tag: string;
  /** The TAP QEMU creates on its host (15 characters at most). */
  tap: string;
  qmp: string;
  console: string;
  consoleLog: string;
  pidFile: string;
}

/** The lab's QEMU directory. */
export function qemuLabDir(prefix: string): string {
  return `/tmp/${prefix}-qemu`;
}

/**
 * The directory of the guest with `mac` in lab `prefix`.
 *
 * @example
 * ```ts
 * import { guestDir } from "./guest_dir.ts";
 * if (guestDir("vnlab", "02:88:00:01:00:02") !== "/tmp/vnlab-qemu/028800010002") throw new Error();
 * ```
 */
export function guestDir(prefix: string, mac: string): string {
  return `${qemuLabDir(prefix)}/${mac.toLowerCase().replaceAll(":", "")}`;
}

/** Namespace of lab host `host` (the lab's naming, which the hook relies on too). */
export function hostNamespace(prefix: string, host: number): string {
  return `${prefix}-h${host}`;
}

/**
 * The files of generation `generation` of the guest recorded in `rec`.
 *
 * @example
 * ```ts
 * import { instancePaths } from "./guest_dir.ts";
 * const p = instancePaths({ prefix: "vnlab", mac: "02:88:00:01:00:02", index: 2 }, 1);
 * if (p.tap !== "qg2x1" || p.qmp !== "/tmp/vnlab-qemu/028800010002/g2x1.qmp") throw new Error();
 * ```
 */
export function instancePaths(
  rec: Pick<GuestRecord, "prefix" | "mac" | "index">,
  generation: number,
): InstancePaths {
  const dir = guestDir(rec.prefix, rec.mac);
  const tag = `g${rec.index}x${generation}`;
  return {
    tag,
    tap: `q${tag}`,
    qmp: `${dir}/${tag}.qmp`,
    console: `${dir}/${tag}.console`,
    consoleLog: `${dir}/${tag}.console.log`,
    pidFile: `${dir}/${tag}.pid`,
  };
}

/** Writes `guest.json` whole (a rename, so a reader never sees half of it). */
export async function writeGuestRecord(rec: GuestRecord): Promise<void> {
  const dir = guestDir(rec.prefix, rec.mac);
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(`${dir}/guest.json.new`, JSON.stringify(rec, null, 2) + "\n");
  await Deno.rename(`${dir}/guest.json.new`, `${dir}/guest.json`);
}

/** The record of the guest with `mac` in lab `prefix`, or null when the lab has no such guest. */
export function readGuestRecord(prefix: string, mac: string): GuestRecord | null {
  try {
    return JSON.parse(Deno.readTextFileSync(`${guestDir(prefix, mac)}/guest.json`));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/**
 * The next unused generation of the guest: one more than any instance that left files (a
 * failed migration's destination included), so no two instances share a TAP or a socket.
 */
export async function nextGeneration(rec: GuestRecord): Promise<number> {
  let top = rec.generation;
  for await (const e of Deno.readDir(guestDir(rec.prefix, rec.mac))) {
    const g = new RegExp(`^g${rec.index}x(\\d+)\\.`).exec(e.name);
    if (g) top = Math.max(top, Number(g[1]));
  }
  return top + 1;
}

/** Whether process `pid` runs (a zombie does not). */
export function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !/^\d+ \(.*\) [ZX]/s.test(stat);
  } catch {
    return false;
  }
}

/** Waits up to `timeoutMs` for `pid` to end; true when it did. */
export async function waitExit(pid: number, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (alive(pid)) {
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

/**
 * The pid in `pidFile` if that process is the QEMU that wrote it (its command line names the
 * pid file, so a recycled pid is never taken for it), else null.
 */
export function daemonPid(pidFile: string): number | null {
  let pid: number;
  let cmdline: string;
  try {
    pid = Number(Deno.readTextFileSync(pidFile).trim());
    cmdline = Deno.readTextFileSync(`/proc/${pid}/cmdline`);
  } catch {
    return null;
  }
  return alive(pid) && cmdline.split("\0").includes(pidFile) ? pid : null;
}

/** Every pid file of the lab's guests. */
async function pidFiles(prefix: string): Promise<string[]> {
  const found: string[] = [];
  try {
    for await (const g of Deno.readDir(qemuLabDir(prefix))) {
      if (!g.isDirectory) continue;
      const dir = `${qemuLabDir(prefix)}/${g.name}`;
      for await (const f of Deno.readDir(dir)) {
        if (f.name.endsWith(".pid")) found.push(`${dir}/${f.name}`);
      }
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return found;
}

/** The QEMUs of the lab's guests that run now, by pid file. */
export async function runningDaemons(prefix: string): Promise<Map<string, number>> {
  const running = new Map<string, number>();
  for (const f of await pidFiles(prefix)) {
    const pid = daemonPid(f);
    if (pid !== null) running.set(f, pid);
  }
  return running;
}

/**
 * Kills every QEMU of the lab (whoever started it: the lab or the proxy's hook), waits for
 * them to end, and removes the lab's QEMU directory unless `keepFiles`.
 */
export async function killLabGuests(prefix: string, keepFiles = false): Promise<void> {
  const pids = [...(await runningDaemons(prefix)).values()];
  for (const pid of pids) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch { /* gone meanwhile */ }
  }
  await Promise.all(pids.map((pid) => waitExit(pid, 5000)));
  if (!keepFiles) await Deno.remove(qemuLabDir(prefix), { recursive: true }).catch(() => {});
}
