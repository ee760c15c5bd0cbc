/**
 * Live migration on the lab, two ways, measured the same way:
 *
 * - a namespace VM: its host-side veth end moves from one host's bridge to another's, as a
 *   hypervisor moves a VM's NIC, and the VM announces itself with RARP frames as QEMU does;
 * - a QEMU guest (testbed/qemu/guest.ts): QEMU's own live migration, source quit afterwards.
 *
 * While a VM moves, an observer VM pings it every 20 ms. A measurement ties together the
 * proxy's move event for this MAC and this destination, the adaptation loop's "forwarding
 * updated on every host" for that very event, and the observer's replies; a piece that is
 * missing is an error that says so, never a stale or NaN figure.
 *
 * @module
 */

import { sh } from "./lab_shell.ts";
import type { Lab, LabProcess } from "./lab.ts";
import type { QemuGuest } from "./qemu/guest.ts";

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
  await moveLink(from, to, ifname, moved).catch((e) => {
    throw new Error(`Cannot move VM ${vm}: ${(e as Error).message}`);
  });
  placement.get(lab)!.set(vm, [toHost, moved]);
}

/**
 * Moves a VM's host-side veth `ifname` from namespace `from` to `to` (renamed `moved`) and
 * onto that host's VM bridge: what a migration looks like to the hosts' bridges.
 */
export async function moveLink(
  from: string,
  to: string,
  ifname: string,
  moved: string,
): Promise<void> {
  for (
    const cmd of [
      ["ip", "-n", from, "link", "set", ifname, "down"],
      ["ip", "-n", from, "link", "set", ifname, "nomaster"],
      ["ip", "-n", from, "link", "set", ifname, "name", moved],
      ["ip", "-n", from, "link", "set", moved, "netns", to],
      ["ip", "-n", to, "link", "set", moved, "master", "br-vm"],
      ["ip", "-n", to, "link", "set", moved, "up"],
    ]
  ) await sh(cmd);
}

/**
 * A VM in namespace `ns` announces itself as QEMU does after a migration: `count` RARP-typed
 * broadcast frames from `mac` out of its eth0, 50 ms apart.
 */
export async function announceFrom(ns: string, mac: string, count = 3): Promise<void> {
  await sh([
    "ip",
    "netns",
    "exec",
    ns,
    Deno.execPath(),
    "run",
    "--allow-ffi",
    "--allow-env",
    INJECT,
    "eth0",
    "ff:ff:ff:ff:ff:ff",
    mac,
    "0",
    String(count),
    "0x8035",
  ]);
}

/** Lab VM `vm` announces itself (see {@linkcode announceFrom}). */
export async function announce(lab: Lab, vm: number, count = 3): Promise<void> {
  await announceFrom(lab.vms[vm].ns, lab.vms[vm].mac, count);
}

/** One ping reply, as `ping -D` printed it. */
export interface PingReply {
  /** When it arrived, ms since the epoch. */
  at: number;
  seq: number;
}

/** `ping -D -i 0.02` from a namespace, watched until stopped. */
export class PingWatch {
  readonly #lab: Lab;
  readonly #proc: LabProcess;

  private constructor(lab: Lab, proc: LabProcess) {
    this.#lab = lab;
    this.#proc = proc;
  }

  /** Starts pinging `ip` from namespace `ns` every `intervalMs` (20 by default). */
  static async start(lab: Lab, ns: string, ip: string, intervalMs = 20): Promise<PingWatch> {
    const proc = await lab.spawn(`ping-${ip}-${Date.now()}`, ns, [
      "ping",
      "-n",
      "-D",
      "-i",
      String(intervalMs / 1000),
      "-W",
      "1",
      ip,
    ]);
    return new PingWatch(lab, proc);
  }

  /** Waits until `count` replies arrived (throws after `timeoutMs` with the log). */
  async waitReplies(count: number, timeoutMs: number): Promise<void> {
    await this.#lab.waitForLog(this.#proc, /icmp_seq=\d+/, timeoutMs, count - 1);
  }

  /** Every reply so far, in arrival order. */
  async replies(): Promise<PingReply[]> {
    const log = await Deno.readTextFile(this.#proc.logPath);
    return [...log.matchAll(/^\[(\d+\.\d+)\] .*icmp_seq=(\d+)/gm)].map((m) => ({
      at: Number(m[1]) * 1000,
      seq: Number(m[2]),
    }));
  }

  /** Stops the pinger. */
  async stop(): Promise<void> {
    await this.#lab.stop(this.#proc, 1000);
  }
}

/** What the proxy recorded about one move: its event and the forwarding update it caused. */
export interface FollowedMove {
  /** The VM's first frame from the new host (the proxy's move event), ms since the epoch. */
  movedAt: number;
  /** From that frame to forwarding updated on every host, by the proxy's own clock. */
  forwardingMs: number;
}

/**
 * Waits (up to `timeoutMs`) until the proxy has followed `mac` to host `toHost` with an event
 * at or after `since`, and the adaptation loop has reported forwarding updated everywhere for
 * that same event; throws naming what is missing.
 */
export async function followedMove(
  lab: Lab,
  opts: { mac: string; toHost: number; since: number; timeoutMs?: number },
): Promise<FollowedMove> {
  const until = Date.now() + (opts.timeoutMs ?? 5000);
  let move: { at: number } | undefined;
  for (;;) {
    const events = await lab.agentJson("events") as {
      type: string;
      change?: string;
      mac?: string;
      at: number;
      to?: string;
    }[];
    move = events.find((e) =>
      e.type === "vm" && e.change === "moved" && e.mac === opts.mac &&
      e.to === `host:h${opts.toHost}` && e.at >= opts.since
    );
    if (move) {
      const adapt = await lab.agentJson("adapt") as {
        moves: { mac: string; movedAt: number; ms: number }[];
      };
      const settled = adapt.moves.find((m) => m.mac === opts.mac && m.movedAt === move!.at);
      if (settled) return { movedAt: move.at, forwardingMs: settled.ms };
    }
    if (Date.now() > until) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(
    move
      ? `Cannot measure the move of ${opts.mac}: the proxy saw it reach h${opts.toHost} but ` +
        "never reported forwarding updated on every host"
      : `Cannot measure the move of ${opts.mac}: the proxy saw no move to h${opts.toHost}`,
  );
}

/** One measured migration. */
export interface MoveMeasurement extends FollowedMove {
  /**
   * When the VM could first answer on its new host, ms since the epoch: the guest's RESUME on
   * the destination for QEMU; the first frame on the new host for a namespace VM.
   */
  completedAt: number;
  /** First reply the observer got from the VM after `completedAt`. */
  firstReplyAt: number;
  /** firstReplyAt - completedAt. */
  recoveryMs: number;
  /** Pings lost from the start of the move until the first reply after it. */
  lostDuringMove: number;
  /** Pings lost after that first reply (should be none). */
  lostAfterRecovery: number;
}

/** A QEMU migration's measurement, with QEMU's own figures. */
export interface QemuMoveMeasurement extends MoveMeasurement {
  /** How long QEMU paused the guest, ms. */
  downtimeMs: number;
  /** The whole migration, ms. */
  totalMs: number;
}

/** Counts what the observer saw around a move; throws when no reply followed `completedAt`. */
function measureReplies(
  replies: PingReply[],
  startedAt: number,
  completedAt: number,
  what: string,
): Pick<MoveMeasurement, "firstReplyAt" | "recoveryMs" | "lostDuringMove" | "lostAfterRecovery"> {
  const after = replies.find((r) => r.at >= completedAt);
  if (!after) throw new Error(`Cannot measure ${what}: the observer got no reply after it`);
  const before = replies.filter((r) => r.at < startedAt).at(-1);
  const later = replies.filter((r) => r.at >= after.at);
  // Sequence numbers count pings sent; missing ones between two replies were lost.
  const between = replies.filter((r) => r.at >= startedAt && r.at < after.at).length;
  return {
    firstReplyAt: after.at,
    recoveryMs: after.at - completedAt,
    lostDuringMove: before ? after.seq - before.seq - 1 - between : 0,
    lostAfterRecovery: later.at(-1)!.seq - after.seq + 1 - later.length,
  };
}

/**
 * What every measured move shares: `observerNs` pings `ip` every 20 ms; once it hears the VM,
 * `move` runs; then replies must resume, and the proxy must have followed `mac` to `toHost`
 * for this move. Returns what `move` returned, the proxy's record and the replies.
 */
async function observeMove<T extends { startedAt: number }>(
  lab: Lab,
  o: { observerNs: string; ip: string; mac: string; toHost: number; readyMs: number },
  move: () => Promise<T>,
): Promise<{ result: T; moved: FollowedMove; replies: PingReply[] }> {
  const watch = await PingWatch.start(lab, o.observerNs, o.ip);
  let result: T;
  try {
    await watch.waitReplies(5, o.readyMs);
    result = await move();
    await watch.waitReplies((await watch.replies()).length + 25, 5000);
  } finally {
    await watch.stop();
  }
  const moved = await followedMove(lab, { mac: o.mac, toHost: o.toHost, since: result.startedAt });
  return { result, moved, replies: await watch.replies() };
}

/**
 * Moves namespace VM `vm` behind `toHost` while VM `observer` pings it every 20 ms, and
 * measures how soon after the move (the proxy's event) the observer hears from it again.
 */
export async function measureMove(
  lab: Lab,
  options: { vm: number; toHost: number; observer: number; pauseMs?: number },
): Promise<MoveMeasurement> {
  const target = lab.vms[options.vm];
  const { result, moved, replies } = await observeMove(lab, {
    observerNs: lab.vms[options.observer].ns,
    ip: target.ip,
    mac: target.mac,
    toHost: options.toHost,
    readyMs: 5000,
  }, async () => {
    const startedAt = Date.now();
    await moveVm(lab, options.vm, options.toHost);
    await new Promise((r) => setTimeout(r, options.pauseMs ?? 300)); // the VM pauses while it moves
    await announce(lab, options.vm);
    return { startedAt };
  });
  return {
    ...moved,
    completedAt: moved.movedAt,
    ...measureReplies(replies, result.startedAt, moved.movedAt, `VM ${options.vm}'s move`),
  };
}

/**
 * Live-migrates QEMU guest `guest` to `toHost` with QEMU's own migration while the namespace
 * `observerNs` pings it every 20 ms; measures from the guest's resumption on the destination.
 */
export async function measureQemuMove(
  lab: Lab,
  options: { guest: QemuGuest; toHost: number; observerNs: string },
): Promise<QemuMoveMeasurement> {
  const { guest } = options;
  const { result: m, moved, replies } = await observeMove(lab, {
    observerNs: options.observerNs,
    ip: guest.ip,
    mac: guest.mac,
    toHost: options.toHost,
    readyMs: 10_000,
  }, () => guest.migrate(options.toHost));
  return {
    ...moved,
    completedAt: m.completedAt,
    downtimeMs: m.downtimeMs,
    totalMs: m.totalMs,
    ...measureReplies(replies, m.startedAt, m.completedAt, `guest ${guest.index}'s migration`),
  };
}
