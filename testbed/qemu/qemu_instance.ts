/**
 * One QEMU process running a guest, as a hypervisor manager starts and ends it: launched as a
 * daemon inside a host's namespace (so it outlives whoever started it: the lab, or the proxy's
 * migration hook), its TAP enslaved to the host's bridge, its monitor held only while someone
 * acts on it, and quit on that monitor when its guest runs elsewhere.
 *
 *     launchInstance: ip netns exec PREFIX-hN qemu-system-x86_64 ... -daemonize -pidfile P
 *       -> the TAP qgNxG QEMU created -> master br-vm, the lab's MTU, up
 *     withMonitor: connect to QMP, act, disconnect (QEMU serves one monitor client at a time,
 *       and the lab and the hook take turns)
 *     retire: `quit` on the monitor, SIGKILL when that fails or when asked to kill
 *
 * @module
 */

import { sh } from "../lab_shell.ts";
import {
  alive,
  daemonPid,
  type GuestRecord,
  hostNamespace,
  type InstancePaths,
  instancePaths,
  waitExit,
} from "./guest_dir.ts";
import { QmpClient } from "./qmp.ts";

/** A running QEMU of a guest. */
export interface QemuInstance {
  host: number;
  generation: number;
  paths: InstancePaths;
  pid: number;
}

/** The TCP port a guest's incoming migration listens on. */
export function migrationPort(rec: Pick<GuestRecord, "index">): number {
  return 4400 + rec.index;
}

/**
 * QEMU's command line for `rec`'s instance at `paths`: TCG, the lab's kernel and initramfs,
 * console and monitor on Unix sockets, virtio-net on a TAP, daemonized with a pid file.
 *
 * @example
 * ```ts
 * import { qemuArgs } from "./qemu_instance.ts";
 * import { instancePaths } from "./guest_dir.ts";
 * const rec = {
 *   prefix: "vnlab", index: 2, mac: "02:88:00:01:00:02", ip: "10.88.0.102", memoryMiB: 64,
 *   blobKiB: 64, compressMigration: false, mtu: 1500, kernel: "/boot/vmlinuz", initrd: "/tmp/i.cpio", host: 1,
 *   generation: 0,
 * };
 * const args = qemuArgs(rec, instancePaths(rec, 1), "defer");
 * if (args.at(-1) !== "defer" || !args.includes("-daemonize")) throw new Error();
 * ```
 */
export function qemuArgs(rec: GuestRecord, paths: InstancePaths, incoming: string | null) {
  return [
    "qemu-system-x86_64",
    "-name",
    `vnet-guest-${rec.index}`,
    "-accel",
    "tcg",
    "-m",
    String(rec.memoryMiB),
    "-nodefaults",
    "-no-user-config",
    "-display",
    "none",
    "-no-reboot",
    "-kernel",
    rec.kernel,
    "-initrd",
    rec.initrd,
    "-append",
    // init_on_free: pages the kernel frees are zeroed, so a migration sends them as zero
    // pages (a fresh guest's freed boot buffers would otherwise travel as a third of its RAM).
    `console=ttyS0 loglevel=3 panic=-1 init_on_free=1 vnet.ip=${rec.ip}/24 vnet.blob=${rec.blobKiB}`,
    "-chardev",
    `socket,id=con,path=${paths.console},server=on,wait=off,logfile=${paths.consoleLog}`,
    "-serial",
    "chardev:con",
    "-qmp",
    `unix:${paths.qmp},server=on,wait=off`,
    "-netdev",
    `tap,id=net0,ifname=${paths.tap},script=no,downscript=no`,
    "-device",
    `virtio-net-pci,netdev=net0,mac=${rec.mac},romfile=`,
    "-daemonize",
    "-pidfile",
    paths.pidFile,
    ...(incoming ? ["-incoming", incoming] : []),
  ];
}

/**
 * Starts generation `generation` of the guest on host `host` (waiting for incoming migration
 * at `incoming` when given: a URI, or `defer` for `migrate-incoming` on the monitor) and puts
 * its TAP on the host's bridge. QEMU's parent returns once
 * the monitor listens, so the instance is ready to be driven when this returns.
 */
export async function launchInstance(
  rec: GuestRecord,
  at: { host: number; generation: number; incoming: string | null },
): Promise<QemuInstance> {
  const paths = instancePaths(rec, at.generation);
  const ns = hostNamespace(rec.prefix, at.host);
  const what = `QEMU for guest ${rec.index} on h${at.host}`;
  const r = await sh(["ip", "netns", "exec", ns, ...qemuArgs(rec, paths, at.incoming)], true);
  if (r.code !== 0) throw new Error(`Cannot start ${what}: exit ${r.code}: ${r.stderr.trim()}`);
  const pid = daemonPid(paths.pidFile);
  if (pid === null) throw new Error(`Cannot start ${what}: it left no running pid in its pid file`);
  const instance = { host: at.host, generation: at.generation, paths, pid };
  for (const cmd of [["master", "br-vm"], ["mtu", String(rec.mtu)], ["up"]]) {
    const set = await sh(["ip", "-n", ns, "link", "set", paths.tap, ...cmd], true);
    if (set.code !== 0) {
      await retire(instance, true);
      throw new Error(`Cannot attach ${paths.tap} to h${at.host}'s bridge: ${set.stderr.trim()}`);
    }
  }
  return instance;
}

/** The instance that runs the guest now, as its record says; throws when it is not running. */
export function currentInstance(rec: GuestRecord): QemuInstance {
  const paths = instancePaths(rec, rec.generation);
  const pid = daemonPid(paths.pidFile);
  if (pid === null) {
    throw new Error(
      `Cannot find guest ${rec.index}'s QEMU (${paths.tag} on h${rec.host}): it is not running`,
    );
  }
  return { host: rec.host, generation: rec.generation, paths, pid };
}

/** Connects to the instance's monitor, runs `act`, and disconnects whatever happens. */
export async function withMonitor<T>(
  instance: QemuInstance,
  act: (qmp: QmpClient) => Promise<T>,
): Promise<T> {
  const qmp = await QmpClient.connect(instance.paths.qmp, 10_000);
  try {
    return await act(qmp);
  } finally {
    await qmp.close();
  }
}

/** Ends an instance: `quit` on its monitor, SIGKILL when that fails or `kill` is set. */
export async function retire(instance: QemuInstance, kill = false): Promise<void> {
  if (!alive(instance.pid)) return;
  if (!kill) {
    await withMonitor(instance, (qmp) => qmp.execute("quit")).catch(() => {});
    if (await waitExit(instance.pid, 5000)) return;
  }
  try {
    Deno.kill(instance.pid, "SIGKILL");
  } catch { /* gone meanwhile */ }
  if (!(await waitExit(instance.pid, 5000))) {
    throw new Error(`Cannot stop QEMU ${instance.paths.tag} (pid ${instance.pid})`);
  }
}

/** Host `host`'s underlay address, read from its namespace (where a migration connects). */
export async function underlayAddress(prefix: string, host: number): Promise<string> {
  const ns = hostNamespace(prefix, host);
  const r = await sh(["ip", "-n", ns, "-4", "-o", "addr", "show", "dev", "eth0"], true);
  const ip = /inet (\d+\.\d+\.\d+\.\d+)\//.exec(r.stdout)?.[1];
  if (!ip) throw new Error(`Cannot find h${host}'s underlay address in ${ns}: ${r.stderr.trim()}`);
  return ip;
}

/** Waits until the instance's console log contains `text`; fails early when QEMU exits. */
export async function waitConsole(
  instance: QemuInstance,
  text: string,
  timeoutMs: number,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  const log = () => Deno.readTextFile(instance.paths.consoleLog).catch(() => "");
  while (Date.now() < until && alive(instance.pid)) {
    if ((await log()).includes(text)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  const exited = alive(instance.pid) ? "" : " (QEMU exited)";
  throw new Error(
    `Cannot see "${text}" on guest console ${instance.paths.tag} within ${timeoutMs} ms${exited}:` +
      `\n${(await log()).slice(-2000) || "(no console output)"}`,
  );
}
