/**
 * A migration hook for the namespace lab, as the proxy's `--migrate-hook` runs it:
 *
 *     deno run -A testbed/placement_hook.ts LAB-PREFIX VM-MAC FROM-HOST TO-HOST
 *
 * It moves the VM with VM-MAC the way its hypervisor would, found by the lab's naming alone
 * (the proxy starts it; it shares no state with the lab's process):
 *
 *     a QEMU guest (a record in /tmp/PREFIX-qemu/MAC/, testbed/qemu/guest_dir.ts)
 *       -> QEMU's own live migration: destination QEMU -incoming on TO-HOST's bridge (a daemon
 *          that outlives this process), `migrate`, RESUME there, the source quit
 *     else a namespace VM (namespace PREFIX-hNvM whose eth0 has VM-MAC)
 *       -> the host end of its veth moves from FROM-HOST's bridge to TO-HOST's, and the VM
 *          announces itself with RARP frames as QEMU does
 *
 * Host `hN` is namespace `PREFIX-hN` with bridge `br-vm`. Exit 0 once the VM runs on TO-HOST;
 * 2 with the reason when it is not on FROM-HOST or a step fails.
 *
 * @module
 */

import { sh } from "./lab_shell.ts";
import { announceFrom, moveLink } from "./migrate.ts";
import { type GuestRecord, readGuestRecord } from "./qemu/guest_dir.ts";
import { migrateGuest } from "./qemu/guest_migration.ts";

/** The namespace of the lab VM with `mac` and the interface index of its veth's other end. */
async function findVm(prefix: string, mac: string): Promise<{ ns: string; peerIndex: number }> {
  const list = (await sh(["ip", "netns", "list"])).stdout.split("\n").map((l) => l.split(" ")[0]);
  const vmNs = new RegExp(`^${prefix}-h\\d+v\\d+$`);
  for (const ns of list.filter((n) => vmNs.test(n))) {
    const line = (await sh(["ip", "-n", ns, "-o", "link", "show", "eth0"], true)).stdout;
    if (!line.toLowerCase().includes(`link/ether ${mac}`)) continue;
    const peer = /eth0@if(\d+)/.exec(line);
    if (peer) return { ns, peerIndex: Number(peer[1]) };
  }
  throw new Error(`no VM with MAC ${mac} in lab ${prefix}`);
}

/** The name of interface `index` in namespace `ns`, or null. */
async function ifName(ns: string, index: number): Promise<string | null> {
  const lines = (await sh(["ip", "-n", ns, "-o", "link"], true)).stdout.split("\n");
  const m = lines.map((l) => new RegExp(`^${index}: ([^@:]+)`).exec(l)).find((x) => x !== null);
  return m ? m[1] : null;
}

/** Moves the namespace VM with `mac` from lab host `from` to `to` (names `hN`). */
export async function moveLabVm(prefix: string, mac: string, from: string, to: string) {
  const vm = await findVm(prefix, mac.toLowerCase());
  const [fromNs, toNs] = [`${prefix}-${from}`, `${prefix}-${to}`];
  const name = await ifName(fromNs, vm.peerIndex);
  if (name === null) throw new Error(`VM ${mac} is not on ${from}`);
  const moved = `x${mac.replaceAll(":", "").slice(-8)}`;
  await moveLink(fromNs, toNs, name, moved);
  await announceFrom(vm.ns, mac);
  return `moved namespace VM ${mac} from ${from} to ${to}`;
}

/** The number of lab host `name` (`hN`). */
function hostNumber(name: string): number {
  const m = /^h(\d+)$/.exec(name);
  if (!m) throw new Error(`${name} is not a lab host name (hN)`);
  return Number(m[1]);
}

/** Live-migrates the QEMU guest of `rec` from lab host `from` to `to` (names `hN`). */
export async function moveQemuGuest(rec: GuestRecord, from: string, to: string) {
  if (rec.host !== hostNumber(from)) throw new Error(`guest ${rec.mac} runs on h${rec.host}`);
  const m = await migrateGuest(rec, hostNumber(to));
  return `live-migrated QEMU guest ${rec.mac} from ${from} to ${to}: ${m.totalMs} ms, ` +
    `downtime ${m.downtimeMs} ms, ${(m.transferredBytes / 1e6).toFixed(1)} MB sent`;
}

if (import.meta.main) {
  const [prefix, mac, from, to] = Deno.args;
  if (!prefix || !mac || !from || !to) {
    console.error("usage: placement_hook.ts LAB-PREFIX VM-MAC FROM-HOST TO-HOST");
    Deno.exit(2);
  }
  try {
    const guest = readGuestRecord(prefix, mac);
    console.log(
      guest ? await moveQemuGuest(guest, from, to) : await moveLabVm(prefix, mac, from, to),
    );
  } catch (e) {
    console.error(`Cannot move ${mac} from ${from} to ${to}: ${(e as Error).message}`);
    Deno.exit(2);
  }
}
