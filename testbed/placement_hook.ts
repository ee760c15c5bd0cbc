/**
 * A migration hook for the namespace lab, as the proxy's `--migrate-hook` runs it:
 *
 *     deno run -A testbed/placement_hook.ts LAB-PREFIX VM-MAC FROM-HOST TO-HOST
 *
 * It does to a namespace VM what a hypervisor does to a guest's NIC: finds the VM's namespace
 * by its MAC, the host-side end of its veth in FROM-HOST's namespace, moves that end onto
 * TO-HOST's VM bridge, and lets the VM announce itself with RARP frames as QEMU does. It needs
 * no state from the lab's process (the proxy starts it), only the lab's naming: host `hN` is
 * namespace `PREFIX-hN` with bridge `br-vm`. Exit 0 once the VM is on TO-HOST; 2 with the
 * reason when it is not on FROM-HOST or a command fails.
 *
 * @module
 */

import { sh } from "./lab_shell.ts";
import { moveLink } from "./migrate.ts";

const INJECT = new URL("./inject_frame.ts", import.meta.url).pathname;

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

/** Moves the VM with `mac` from lab host `from` to `to` (names `hN`). */
export async function moveLabVm(prefix: string, mac: string, from: string, to: string) {
  const vm = await findVm(prefix, mac.toLowerCase());
  const [fromNs, toNs] = [`${prefix}-${from}`, `${prefix}-${to}`];
  const name = await ifName(fromNs, vm.peerIndex);
  if (name === null) throw new Error(`VM ${mac} is not on ${from}`);
  const moved = `x${mac.replaceAll(":", "").slice(-8)}`;
  await moveLink(fromNs, toNs, name, moved);
  await sh([
    "ip",
    "netns",
    "exec",
    vm.ns,
    Deno.execPath(),
    "run",
    "--allow-ffi",
    "--allow-env",
    INJECT,
    "eth0",
    "ff:ff:ff:ff:ff:ff",
    mac,
    "0",
    "3",
    "0x8035",
  ]);
}

if (import.meta.main) {
  const [prefix, mac, from, to] = Deno.args;
  if (!prefix || !mac || !from || !to) {
    console.error("usage: placement_hook.ts LAB-PREFIX VM-MAC FROM-HOST TO-HOST");
    Deno.exit(2);
  }
  try {
    await moveLabVm(prefix, mac, from, to);
    console.log(`moved ${mac} from ${from} to ${to}`);
  } catch (e) {
    console.error(`Cannot move ${mac} from ${from} to ${to}: ${(e as Error).message}`);
    Deno.exit(2);
  }
}
