/**
 * The QEMU guest's boot image: this machine's own Linux kernel (Debian's cloud kernel is small
 * and boots under TCG in about 2.5 s) and an initramfs built here from static busybox, the
 * kernel's virtio modules and an init script.
 *
 *     kernel command line: vnet.ip=10.88.0.101/24 vnet.blob=4096
 *     init: load virtio_pci, virtio_net -> eth0 up with vnet.ip -> /www/blob (KiB of random
 *           bytes) and /www/blob.sha256 -> busybox httpd on port 80 -> "VNET-GUEST-READY"
 *           -> a shell on the serial console (the lab's guest console drives it)
 *
 * Nothing is downloaded: the kernel, its modules and busybox come from Debian's packages
 * (`linux-image-cloud-amd64`, `busybox-static`), which `.ci/run` installs.
 *
 * @module
 */

import { type CpioEntry, encodeCpio } from "./cpio.ts";

/** What the guest needs from this machine. */
export interface GuestKernel {
  /** Path of the kernel image (`/boot/vmlinuz-RELEASE`). */
  kernel: string;
  /** Kernel release, e.g. `6.1.0-57-cloud-amd64`. */
  release: string;
  /** `/lib/modules/RELEASE`. */
  modulesDir: string;
}

/** The guest's network driver and the PCI transport under it. */
export const GUEST_MODULES: readonly string[] = ["virtio_pci", "virtio_net"];

/** Printed by the guest's init once its network and HTTP service are up. */
export const GUEST_READY = "VNET-GUEST-READY";

const BUSYBOX_CANDIDATES = ["/bin/busybox", "/usr/bin/busybox"];

function moduleName(path: string): string {
  return path.split("/").pop()!.replace(/\.ko(\.(xz|zst|gz))?$/, "").replaceAll("-", "_");
}

/**
 * The module files to load for `wanted`, dependencies first, from the text of `modules.dep`;
 * modules listed in `modules.builtin` (built into the kernel) need no file. Throws a
 * RangeError naming a module that is neither.
 *
 * @example
 * ```ts
 * import { moduleLoadOrder } from "./guest_image.ts";
 * const dep = "kernel/a.ko: kernel/b.ko\nkernel/b.ko:\n";
 * const order = moduleLoadOrder(dep, "", ["a"]);
 * if (order.join() !== "kernel/b.ko,kernel/a.ko") throw new Error(order.join());
 * ```
 */
export function moduleLoadOrder(
  modulesDep: string,
  modulesBuiltin: string,
  wanted: readonly string[],
): string[] {
  const deps = new Map<string, { path: string; needs: string[] }>();
  for (const line of modulesDep.split("\n")) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const path = line.slice(0, colon).trim();
    const needs = line.slice(colon + 1).trim().split(/\s+/).filter(Boolean);
    deps.set(moduleName(path), { path, needs });
  }
  const builtin = new Set(
    modulesBuiltin.split("\n").map((l) => l.trim()).filter(Boolean).map(moduleName),
  );
  const order: string[] = [];
  const visit = (name: string, chain: string[]) => {
    if (builtin.has(name) || order.some((p) => moduleName(p) === name)) return;
    const m = deps.get(name);
    if (!m) {
      throw new RangeError(
        `Cannot build the guest image: module ${name} (${
          [...chain, name].join(" -> ")
        }) is neither in modules.dep nor built in`,
      );
    }
    if (chain.includes(name)) return; // modules.dep has no cycles; be safe anyway
    for (const need of m.needs) visit(moduleName(need), [...chain, name]);
    order.push(m.path);
  };
  for (const w of wanted) visit(w.replaceAll("-", "_"), []);
  return order;
}

/** The guest's /init: a busybox shell script. */
export function initScript(modules: readonly string[]): string {
  const names = modules.map((p) => p.split("/").pop()!);
  return `#!/bin/busybox sh
# vnet lab guest: network from the kernel command line, an HTTP service, a console shell.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in ${names.join(" ")}; do insmod /lib/modules/$m || echo "vnet-guest: insmod $m failed"; done
IP=; BLOB=1024
for a in $(cat /proc/cmdline); do
  case $a in vnet.ip=*) IP=\${a#vnet.ip=};; vnet.blob=*) BLOB=\${a#vnet.blob=};; esac
done
ip link set lo up
ip link set eth0 up
[ -n "$IP" ] && ip addr add "$IP" dev eth0
mkdir -p /www
head -c $((BLOB * 1024)) /dev/urandom > /www/blob
sha256sum /www/blob | cut -d' ' -f1 > /www/blob.sha256
httpd -p 80 -h /www
echo "${GUEST_READY} $IP $(cat /www/blob.sha256)"
exec setsid cttyhack sh
`;
}

/** Why QEMU guests cannot run here, or null when they can. */
export function qemuUnavailable(): string | null {
  if (!which("qemu-system-x86_64")) {
    return "needs qemu-system-x86_64 (apt-get install qemu-system-x86)";
  }
  if (!BUSYBOX_CANDIDATES.some(isStaticBusybox)) {
    return "needs a static busybox for the guest (apt-get install busybox-static)";
  }
  try {
    findGuestKernel();
  } catch (e) {
    return (e as Error).message;
  }
  return null;
}

function which(cmd: string): boolean {
  const dirs = (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":");
  return dirs.some((d) => {
    try {
      return Deno.statSync(`${d}/${cmd}`).isFile;
    } catch {
      return false;
    }
  });
}

function isStaticBusybox(path: string): boolean {
  try {
    const head = new Uint8Array(4096);
    const file = Deno.openSync(path);
    const n = file.readSync(head) ?? 0;
    file.close();
    // A static executable has no PT_INTERP program header, so no "ld-linux" interpreter path.
    return n > 0 && !new TextDecoder("latin1").decode(head.subarray(0, n)).includes("ld-linux");
  } catch {
    return false;
  }
}

/**
 * A kernel of this machine whose module tree has the virtio network driver: the one named by
 * `VNET_GUEST_KERNEL` (a release), else the newest `/boot/vmlinuz-*-cloud-*`, else the newest
 * `/boot/vmlinuz-*`. Throws with what to install when there is none.
 */
export function findGuestKernel(): GuestKernel {
  const wantedRelease = Deno.env.get("VNET_GUEST_KERNEL");
  let releases: string[] = [];
  try {
    releases = [...Deno.readDirSync("/boot")]
      .map((e) => /^vmlinuz-(.+)$/.exec(e.name)?.[1])
      .filter((r): r is string => !!r)
      .sort()
      .reverse();
  } catch { /* no /boot */ }
  if (wantedRelease) releases = releases.filter((r) => r === wantedRelease);
  releases.sort((a, b) => Number(b.includes("cloud")) - Number(a.includes("cloud")));
  for (const release of releases) {
    const modulesDir = `/lib/modules/${release}`;
    try {
      const dep = Deno.readTextFileSync(`${modulesDir}/modules.dep`);
      const builtin = Deno.readTextFileSync(`${modulesDir}/modules.builtin`);
      const order = moduleLoadOrder(dep, builtin, GUEST_MODULES);
      if (order.some((p) => !p.endsWith(".ko"))) continue; // compressed: busybox insmod can't
      return { kernel: `/boot/vmlinuz-${release}`, release, modulesDir };
    } catch { /* try the next one */ }
  }
  throw new Error(
    `needs a guest kernel${
      wantedRelease ? ` (VNET_GUEST_KERNEL=${wantedRelease})` : ""
    } with uncompressed virtio_net modules in /boot and /lib/modules ` +
      "(apt-get install linux-image-cloud-amd64)",
  );
}

/** The kernel and initramfs a guest boots from. */
export interface GuestImage {
  kernel: string;
  initrd: string;
}

/** Images built or being built, by folder: guests started together share one build. */
const built = new Map<string, Promise<GuestImage>>();

/**
 * Writes the guest initramfs into `dir` (once per process and folder; later and concurrent
 * calls share it) and returns the paths to boot from.
 */
export function buildGuestImage(dir: string): Promise<GuestImage> {
  let image = built.get(dir);
  if (!image) {
    image = writeGuestImage(dir);
    built.set(dir, image);
    image.catch(() => built.delete(dir));
  }
  return image;
}

async function writeGuestImage(dir: string): Promise<GuestImage> {
  const k = findGuestKernel();
  const initrd = `${dir}/guest-initrd-${k.release}.cpio`;
  const dep = await Deno.readTextFile(`${k.modulesDir}/modules.dep`);
  const builtin = await Deno.readTextFile(`${k.modulesDir}/modules.builtin`);
  const modules = moduleLoadOrder(dep, builtin, GUEST_MODULES);
  const busybox = BUSYBOX_CANDIDATES.find(isStaticBusybox)!;
  const entries: CpioEntry[] = [
    ...["bin", "dev", "proc", "sys", "lib", "lib/modules", "www", "tmp"].map((path) => ({
      kind: "dir" as const,
      path,
    })),
    { kind: "file", path: "bin/busybox", data: await Deno.readFile(busybox), mode: 0o755 },
    { kind: "symlink", path: "bin/sh", target: "busybox" },
    ...await Promise.all(modules.map(async (m) => ({
      kind: "file" as const,
      path: `lib/modules/${m.split("/").pop()}`,
      data: await Deno.readFile(`${k.modulesDir}/${m}`),
    }))),
    {
      kind: "file",
      path: "init",
      data: new TextEncoder().encode(initScript(modules)),
      mode: 0o755,
    },
  ];
  await Deno.writeFile(initrd, encodeCpio(entries));
  return { kernel: k.kernel, initrd };
}
