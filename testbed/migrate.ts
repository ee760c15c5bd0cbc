/**
 * Live migration on the lab: a VM namespace keeps its interface, MAC and IP, and its host-side
 * veth end moves from one host's bridge to another's, as a hypervisor's migration moves a VM's
 * NIC; then the VM announces itself with RARP frames, as QEMU does after a migration.
 *
 * @module
 */

import type { Lab } from "./lab.ts";

const INJECT = new URL("./inject_frame.ts", import.meta.url).pathname;

/** Where each VM's host-side veth end is now: VM index -> [host number, interface name]. */
const placement = new WeakMap<Lab, Map<number, [number, string]>>();

function where(lab: Lab, vm: number): [number, string] {
  let m = placement.get(lab);
  if (!m) placement.set(lab, m = new Map());
  return m.get(vm) ?? [lab.vms[vm].host, `v${lab.vms[vm].ns.split("v").pop()}`];
}

/** Moves VM `vm` (index in lab.vms) behind host `toHost`; returns when the link is up there. */
export async function moveVm(lab: Lab, vm: number, toHost: number): Promise<void> {
  const [fromHost, ifname] = where(lab, vm);
  if (fromHost === toHost) return;
  const from = lab.hostNs(fromHost);
  const to = lab.hostNs(toHost);
  const moved = `m${vm}h${toHost}`;
  for (
    const cmd of [
      ["ip", "-n", from, "link", "set", ifname, "down"],
      ["ip", "-n", from, "link", "set", ifname, "nomaster"],
      ["ip", "-n", from, "link", "set", ifname, "name", moved],
      ["ip", "-n", from, "link", "set", moved, "netns", to],
      ["ip", "-n", to, "link", "set", moved, "master", "br-vm"],
      ["ip", "-n", to, "link", "set", moved, "up"],
    ]
  ) {
    const out = await new Deno.Command(cmd[0], { args: cmd.slice(1), stderr: "piped" }).output();
    if (!out.success) {
      throw new Error(
        `Cannot move VM ${vm}: ${cmd.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`,
      );
    }
  }
  placement.get(lab)!.set(vm, [toHost, moved]);
}

/** The VM announces itself: `count` RARP-typed broadcast frames from its MAC, 50 ms apart. */
export async function announce(lab: Lab, vm: number, count = 3): Promise<void> {
  const v = lab.vms[vm];
  await lab.exec(v.ns, [
    Deno.execPath(),
    "run",
    "--allow-ffi",
    "--allow-env",
    INJECT,
    "eth0",
    "ff:ff:ff:ff:ff:ff",
    v.mac,
    "0",
    String(count),
    "0x8035",
  ], false);
}

/** One measured migration. */
export interface MoveMeasurement {
  /** When the proxy moved the VM (its first frame from the new host), ms since epoch. */
  movedAt: number;
  /** First ping reply from the VM seen by the observer after that, ms since epoch. */
  firstReplyAt: number;
  /** firstReplyAt - movedAt. */
  recoveryMs: number;
  /** Pings lost after the first reply that followed the move (should be none). */
  lostAfterRecovery: number;
  /** The proxy's own measure: first frame -> forwarding updated on every host. */
  forwardingMs: number | null;
}

/**
 * Moves VM `vm` behind `toHost` while VM `observer` pings it every 20 ms, and measures how soon
 * after the move (the proxy's event) the observer hears from it again.
 */
export async function measureMove(
  lab: Lab,
  options: { vm: number; toHost: number; observer: number; pauseMs?: number },
): Promise<MoveMeasurement> {
  const target = lab.vms[options.vm];
  const pinger = await lab.spawn(
    `ping-${options.vm}-${options.toHost}-${Date.now()}`,
    lab.vms[options.observer].ns,
    ["ping", "-n", "-D", "-i", "0.02", "-W", "1", target.ip],
  );
  try {
    await new Promise((r) => setTimeout(r, 300));
    await moveVm(lab, options.vm, options.toHost);
    await new Promise((r) => setTimeout(r, options.pauseMs ?? 300)); // the VM pauses while it moves
    await announce(lab, options.vm);
    await new Promise((r) => setTimeout(r, 1500));
  } finally {
    await lab.stop(pinger, 1000);
  }
  const events = await lab.agentJson("events") as {
    type: string;
    change?: string;
    mac?: string;
    at: number;
    to?: string;
  }[];
  const move = events.findLast((e) =>
    e.type === "vm" && e.change === "moved" && e.mac === target.mac &&
    e.to === `host:h${options.toHost}`
  );
  if (!move) throw new Error(`Cannot measure the move of VM ${options.vm}: the proxy saw no move`);
  const log = await Deno.readTextFile(pinger.logPath);
  const replies = [...log.matchAll(/^\[(\d+\.\d+)\] .*icmp_seq=(\d+)/gm)].map((m) => ({
    at: Number(m[1]) * 1000,
    seq: Number(m[2]),
  }));
  const after = replies.find((r) => r.at >= move.at);
  if (!after) throw new Error(`Cannot measure the move of VM ${options.vm}: no reply after it`);
  const later = replies.filter((r) => r.at >= after.at);
  const lostAfterRecovery = later.length ? later.at(-1)!.seq - after.seq + 1 - later.length : 0;
  const adapt = await lab.agentJson("adapt") as { moves: { mac: string; ms: number }[] };
  return {
    movedAt: move.at,
    firstReplyAt: after.at,
    recoveryMs: after.at - move.at,
    lostAfterRecovery,
    forwardingMs: adapt.moves.findLast((m) => m.mac === target.mac)?.ms ?? null,
  };
}
