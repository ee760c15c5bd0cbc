/**
 * Many simulated hosts in one process, for `bench:scale`: each a whole {@linkcode runHost}
 * with one or more VMs on an in-memory device, joined to a proxy over any transport. The bench
 * runs one fleet in-process beside the proxy (memory network), or several fleets in worker
 * processes (scale_worker.ts) against a real proxy process over TLS.
 *
 *     fleet.join() ──runHost x N, all at once──> proxy     (join-storm time)
 *     fleet.claim(k)     each VM tells one of the first k VMs (whose MACs the proxy knows) its
 *                        address, in a unicast ARP reply: the proxy learns every MAC and
 *                        address, and nothing floods
 *     fleet.ring(on)     each VM sends one small frame to the next VM every report interval
 *
 * Claims and ring frames are spread over their interval in {@linkcode SLICES} slices, each VM
 * at its own phase as independent VMs are, not thousands in one timer callback: a worker that
 * woke 2,500 idle links at once stalled for more than the proxy's dead-after.
 *     fleet.broadcast(i) / fleet.arpFor(i, j)     one flood / one ARP request, then count
 *     fleet.received     frames the devices were given (what a flood cost)
 *     fleet.health()     uplinks' largest silence since the last call, reconnects
 *
 * VM v (global number) has MAC 02:00:00:00:00:00 + v + 1 and IPv4 10.64.0.0 + v + 1, so the
 * fleets of several workers make one numbering.
 *
 * @module
 */

import type { Clock } from "../agent/clock.ts";
import type { Config } from "../agent/config/schema.ts";
import type { Address } from "../agent/config/types.ts";
import { PacketBatch } from "../agent/device/device.ts";
import { MemoryDevice } from "../agent/device/memory_device.ts";
import { type HostHandle, runHost } from "../agent/host.ts";
import type { Transport } from "../agent/link/transport.ts";
import { BROADCAST_MAC, type Mac, writeMac } from "../agent/switch/ethernet.ts";
import { testConfig } from "./config.ts";

/** Slices an interval's frames are spread over. */
const SLICES = 20;

/**
 * How long the claims of `vms` VMs are spread over: a second, or 5,000 VMs a second (a
 * worker that sent 25,000 claims within one second stalled past the proxy's dead-after, and
 * at 10,000 a second the niced workers of a 100,000-VM run fell 3 s behind in two of five
 * runs, and their hosts were closed as silent).
 */
export function claimSpreadMs(vms: number): number {
  return Math.max(1000, Math.ceil(vms / 5));
}

/** The MAC of VM `v` (global number, from 0). */
export function scaleVmMac(v: number): Mac {
  return 0x0200_0000_0000 + v + 1;
}

/** The IPv4 address of VM `v`, as a number (10.64.0.0/10 holds four million). */
export function scaleVmIp(v: number): number {
  return (10 * 2 ** 24 + 64 * 2 ** 16 + v + 1) >>> 0;
}

/** An Ethernet frame (no virtio header), as MemoryDevice.inject takes it. */
function ethernet(dst: Mac, src: Mac, etherType: number, payload: number): Uint8Array {
  const f = new Uint8Array(14 + Math.max(payload, 46));
  writeMac(f, 0, dst);
  writeMac(f, 6, src);
  f[12] = etherType >> 8;
  f[13] = etherType & 0xff;
  return f;
}

/** An ARP frame: op 1 (request, broadcast) or 2 (reply, to `tha`). */
export function arpFrame(
  o: { op: 1 | 2; sha: Mac; spa: number; tha: Mac; tpa: number },
): Uint8Array {
  const f = ethernet(o.op === 1 ? BROADCAST_MAC : o.tha, o.sha, 0x0806, 28);
  f.set([0, 1, 0x08, 0x00, 6, 4, 0, o.op], 14);
  writeMac(f, 22, o.sha);
  new DataView(f.buffer).setUint32(28, o.spa);
  writeMac(f, 32, o.op === 1 ? 0 : o.tha);
  new DataView(f.buffer).setUint32(38, o.tpa);
  return f;
}

/** What {@linkcode HostFleet.health} reports. */
export interface FleetHealth {
  /** Hosts whose uplink is up now. */
  up: number;
  /** Largest gap between two receives on any uplink since the last call, ms. */
  maxSilenceMs: number;
  /** Slowest keepalive round trip on any uplink since the last call, ms. */
  maxRttMs: number;
  /** Uplinks that waited longer than `keepaliveMs` for a keepalive's answer (a miss). */
  missed: number;
  /** Joins beyond the first, over all hosts (reconnects). */
  reconnects: number;
}

/** Settings of a {@linkcode HostFleet}. */
export interface FleetOptions {
  proxy: Address;
  /** The join token, as text. */
  token: string;
  /** Global number of the fleet's first host (names `s<i>`) and of its first VM. */
  firstHost: number;
  hosts: number;
  vmsPerHost: number;
  /** Each host's transport (e.g. one memory source address per host, or TLS). */
  transport(i: number): Transport;
  clock: Clock;
  /** Where host `i` accepts fast paths (explicit ports keep loopback's ephemeral ones free). */
  listen?(i: number): Address | null;
  /** Holds every host's state directory. */
  stateRoot: string;
  config?: Partial<Config>;
}

/** N hosts with their VMs. */
export class HostFleet {
  readonly hosts: HostHandle[] = [];
  readonly devices: MemoryDevice[] = [];
  /** Frames the devices were given by their hosts, since the last reset. */
  received = 0;
  readonly #o: FleetOptions;
  #ring: ReturnType<Clock["every"]> | null = null;

  constructor(options: FleetOptions) {
    this.#o = options;
  }

  /** Hosts the fleet runs (once joined). */
  get size(): number {
    return this.#o.hosts;
  }

  /** VM numbers of host `h` (fleet-local index). */
  #vms(h: number): number[] {
    const first = (this.#o.firstHost + h) * this.#o.vmsPerHost;
    return Array.from({ length: this.#o.vmsPerHost }, (_, k) => first + k);
  }

  /**
   * Starts every host at once; resolves when all have joined, with the time that took.
   * `onJoined` hears of each join (for progress).
   */
  async join(onJoined?: (n: number) => void): Promise<{ ms: number }> {
    const o = this.#o;
    const t0 = performance.now();
    let joined = 0;
    const starting: Promise<void>[] = [];
    for (let h = 0; h < o.hosts; h++) {
      const i = o.firstHost + h;
      const device = new MemoryDevice({ name: `v${i}`, queueCapacity: 64 });
      device.onWrite = () => this.received++;
      this.devices.push(device);
      starting.push(
        runHost(
          testConfig({
            join: o.proxy,
            token: o.token,
            name: `s${i}`,
            stateDir: `${o.stateRoot}/s${i}`,
            listen: o.listen?.(i) ?? null,
            logLevel: "error",
            ...o.config,
          }),
          {
            openDevice: () => device,
            transport: o.transport(i),
            clock: o.clock,
            // Small frames only: a few small slots, not 2 MiB per simulated host.
            pumpBatch: new PacketBatch(4, 2048),
          },
        ).then(async (host) => {
          this.hosts[h] = host;
          await host.ready;
          onJoined?.(++joined);
        }),
      );
    }
    await Promise.all(starting);
    return { ms: performance.now() - t0 };
  }

  /**
   * Each VM tells VM `(v + 1) % knownVms` its address. The first `knownVms` VMs must already
   * be known to the proxy (they sent frames): a unicast to an unknown MAC floods to every
   * host, and N first frames flooding is N² frames.
   */
  claim(knownVms: number, overMs = 1000): void {
    for (let slice = 0; slice < SLICES; slice++) {
      this.#o.clock.after(slice * overMs / SLICES, () => {
        this.#eachVm((device, v) => {
          const to = (v + 1) % knownVms;
          device.inject(arpFrame({
            op: 2,
            sha: scaleVmMac(v),
            spa: scaleVmIp(v),
            tha: scaleVmMac(to),
            tpa: scaleVmIp(to),
          }));
        }, slice);
      });
    }
  }

  /** Starts (or stops) a ring: every `everyMs`, each VM sends a 64-byte frame to the next. */
  ring(on: boolean, totalVms: number, everyMs: number): void {
    this.#ring?.cancel();
    this.#ring = null;
    if (!on) return;
    const frames = new Map<number, Uint8Array>();
    this.#eachVm((_, v) => {
      frames.set(v, ethernet(scaleVmMac((v + 1) % totalVms), scaleVmMac(v), 0x88b5, 46));
    });
    let slice = 0;
    this.#ring = this.#o.clock.every(everyMs / SLICES, () => {
      this.#eachVm((device, v) => device.inject(frames.get(v)!), slice);
      slice = (slice + 1) % SLICES;
    });
  }

  /** Host `h`'s first VM sends one broadcast frame (not ARP: a true flood). */
  broadcast(h: number): void {
    const v = this.#vms(h)[0];
    this.devices[h].inject(ethernet(BROADCAST_MAC, scaleVmMac(v), 0x88b5, 46));
  }

  /** Host `h`'s first VM asks who has VM `target`'s address (a broadcast ARP request). */
  arpFor(h: number, target: number): void {
    const v = this.#vms(h)[0];
    this.devices[h].inject(arpFrame({
      op: 1,
      sha: scaleVmMac(v),
      spa: scaleVmIp(v),
      tha: 0,
      tpa: scaleVmIp(target),
    }));
  }

  /**
   * The uplinks' health since the last call (see {@linkcode FleetHealth}): a keepalive is
   * missed when its answer took longer than `keepaliveMs`, by when the next one was due.
   */
  health(keepaliveMs: number): FleetHealth {
    let up = 0, maxSilenceMs = 0, maxRttMs = 0, missed = 0, reconnects = 0;
    for (const h of this.hosts) {
      if (!h) continue;
      reconnects += Math.max(0, h.joins() - 1);
      const link = h.uplink();
      if (!link) continue;
      up++;
      const k = link.takeKeepaliveHealth();
      maxSilenceMs = Math.max(maxSilenceMs, k.maxSilenceMs);
      maxRttMs = Math.max(maxRttMs, k.maxRttMs);
      if (k.maxRttMs > keepaliveMs) missed++;
    }
    return { up, maxSilenceMs, maxRttMs, missed, reconnects };
  }

  /** Stops every host. */
  async stop(): Promise<void> {
    this.ring(false, 0, 0);
    await Promise.all(this.hosts.filter((h) => h).map((h) => h.stop()));
  }

  /** Calls `fn` for each VM, or for those of one slice of the hosts (h % SLICES). */
  #eachVm(fn: (device: MemoryDevice, v: number) => void, slice?: number): void {
    const step = slice === undefined ? 1 : SLICES;
    for (let h = slice ?? 0; h < this.devices.length; h += step) {
      for (const v of this.#vms(h)) fn(this.devices[h], v);
    }
  }
}
