/**
 * The switch: one decision per frame, over the forwarding rules, the MAC table and the
 * ports that exist right now.
 *
 *     device.read ──┐                                   ┌──> device.write
 *                   ├──> Switch.forward(packet, from) ──┤
 *     link.receive ─┘                                   └──> link.send (queue, batched write)
 *
 * Roles differ only in their defaults, never in the rule lookup:
 *
 * - host: frames from the device go where a rule says, else up to the proxy (the star);
 *   broadcast and multicast always go to the proxy only. Frames from any link go to the
 *   device (or where a `device`/`drop` rule says): a host never relays between links, so
 *   fast-path links cannot form a loop.
 * - proxy: learns which port every source MAC lives behind, sends known unicast there and
 *   floods group and unknown unicast over the star (every host link and the LAN device,
 *   except where the frame came from). The star is the only tree, so flooding never loops.
 *   ARP and neighbour solicitations for addresses it has seen claimed are answered instead of
 *   flooded (neighbour_suppression.ts).
 *
 * The switch never reads a clock or a socket: `now` is passed in, ports are interfaces.
 *
 * @module
 */

import { FloodList } from "./flood_list.ts";
import { DST_OFFSET, MIN_PACKET_BYTES, SRC_OFFSET, VNET_HDR_LEN } from "../packet/layout.ts";
import { isGroupMac, type Mac, macAt } from "./ethernet.ts";
import { DROP_TARGET, ForwardingTable } from "./forwarding_table.ts";
import { type MacEntry, MacTable } from "./mac_table.ts";
import { NeighbourSuppressor } from "./neighbour_suppression.ts";
import { type DropCounters, newDropCounters } from "./drop_counters.ts";
import { HeldClaims, MovedAway } from "./migration.ts";
import { newPortCounters, type Port, type PortCounters } from "./port.ts";
import type { FrameObserver, MacListener, MovePolicy, PeerSourcePolicy } from "./switch_hooks.ts";

// Re-exported: the switch's vocabulary, imported from here by links, devices, the proxy and
// the API since before it had files of its own.
export type { DropCounters } from "./drop_counters.ts";
export type { Port, PortCounters, PortKind } from "./port.ts";
export type { FrameObserver, MacListener, MovePolicy, PeerSourcePolicy } from "./switch_hooks.ts";

/** Settings of a {@linkcode Switch}. */
export interface SwitchOptions {
  role: "host" | "proxy";
  /** Upper bound on learned MACs. */
  maxMacs: number;
  /** A MAC not seen for this long is forgotten. */
  macAgeMs: number;
  /**
   * A MAC active behind one port may be claimed from another port only after it has been
   * silent for this long (a VM that migrated stops talking at its old host; a spoofer
   * competes with a live VM). 0 lets every move through.
   */
  moveQuietMs: number;
  /** Most MACs one port may hold (a host claiming endless addresses); 0: no bound. */
  maxMacsPerPort?: number;
  /**
   * Proxy: answer ARP and IPv6 neighbour solicitations for known addresses instead of
   * flooding them (default true; a host never suppresses).
   */
  neighbourSuppression?: boolean;
}

/** Addresses (IPv4 and IPv6) the proxy keeps per learned MAC, on average, at most. */
const NEIGHBOURS_PER_MAC = 4;

/**
 * The frame switch of one agent.
 *
 * @example Two VMs behind two host ports of a proxy
 * ```ts
 * import { Switch, type Port } from "./switch.ts";
 * const sent: string[] = [];
 * const port = (name: string): Port => ({ name, kind: "host", send: () => (sent.push(name), true) });
 * const sw = new Switch({ role: "proxy", maxMacs: 100, macAgeMs: 60_000, moveQuietMs: 0 });
 * sw.attach(port("host:a"));
 * sw.attach(port("host:b"));
 * const frame = (dst: number, src: number) => {
 *   const p = new Uint8Array(10 + 60);
 *   p.set([0, 0, 0, 0, 0, dst], 10);
 *   p.set([2, 0, 0, 0, 0, src], 16);
 *   return p;
 * };
 * sw.forward(frame(2, 1), "host:a", 0); // unknown destination: flooded to b
 * sw.forward(frame(1, 2), "host:b", 1); // 1 was learned behind a
 * if (sent.join() !== "host:b,host:a") throw new Error(sent.join());
 * ```
 */
export class Switch {
  readonly rules = new ForwardingTable();
  readonly macs: MacTable;
  readonly drops: DropCounters = newDropCounters();
  observer: FrameObserver | null = null;
  listener: MacListener | null = null;
  /** Who may move a MAC between live ports (proxy); null: the quiet timer alone. */
  movePolicy: MovePolicy | null = null;
  /** Host: which sources fast-path peers may send; null: not checked (unit tests). */
  peerSources: PeerSourcePolicy | null = null;
  /** Proxy: ARP/ND suppression, its bindings and counters; null when off (and on hosts). */
  readonly neighbours: NeighbourSuppressor | null;
  /** Frames of claims under review, by MAC: replayed if the move is authorised. */
  readonly #held = new HeldClaims();
  /** Host: VMs that left, until when frames for them are passed to the proxy. */
  readonly #movedAway = new MovedAway();

  readonly #role: "host" | "proxy";
  readonly #moveQuietMs: number;
  readonly #maxMacsPerPort: number;
  readonly #ports = new Map<string, Port>();
  readonly #counters = new Map<string, PortCounters>();
  readonly #floodList = new FloodList(() => this.#ports.values());
  #uplink: Port | null = null;
  #device: Port | null = null;
  readonly #usable = (name: string) => this.#ports.has(name);
  readonly #usableFromLink = (name: string) => name === "device" && this.#device !== null;

  constructor(options: SwitchOptions) {
    this.#role = options.role;
    this.#moveQuietMs = options.moveQuietMs;
    this.#maxMacsPerPort = options.maxMacsPerPort ?? 0;
    this.macs = new MacTable({ maxEntries: options.maxMacs, ageMs: options.macAgeMs });
    this.neighbours = options.role === "proxy" && (options.neighbourSuppression ?? true)
      ? new NeighbourSuppressor({
        macs: this.macs,
        maxEntries: options.maxMacs * NEIGHBOURS_PER_MAC,
        ageMs: options.macAgeMs,
      })
      : null;
  }

  /** This switch's role. */
  get role(): "host" | "proxy" {
    return this.#role;
  }

  /** Adds a port (replacing one of the same name). */
  attach(port: Port): void {
    if (this.#ports.has(port.name)) this.detach(port.name);
    this.#ports.set(port.name, port);
    if (!this.#counters.has(port.name)) {
      this.#counters.set(port.name, newPortCounters());
    }
    if (port.kind === "uplink") this.#uplink = port;
    if (port.kind === "device") this.#device = port;
    this.#floodList.attached(port);
  }

  /**
   * Removes a port. Rules that target it stop matching at once (lookups fall through to
   * the next rule or the default); MACs learned behind it are forgotten on the proxy.
   */
  detach(name: string): void {
    const port = this.#ports.get(name);
    if (!port) return;
    this.#ports.delete(name);
    if (this.#uplink === port) this.#uplink = null;
    if (this.#device === port) this.#device = null;
    this.#floodList.detached();
    if (this.#role === "proxy") this.macs.forgetPort(name);
  }

  /**
   * Marks `mac` as seen now behind `port`, only if the table already places it there: a
   * host's own word keeps its VMs from ageing out, but cannot move or claim an address.
   */
  refreshMac(mac: Mac, port: string, now: number): void {
    const e = this.macs.get(mac);
    if (e?.port === port) this.macs.learn(mac, port, now);
  }

  /** The port named `name`, if attached. */
  port(name: string): Port | undefined {
    return this.#ports.get(name);
  }

  /** Names of attached ports. */
  portNames(): string[] {
    return [...this.#ports.keys()];
  }

  /** Counters per port name (kept after a port detaches, so totals survive reconnects). */
  counters(): ReadonlyMap<string, Readonly<PortCounters>> {
    return this.#counters;
  }

  /**
   * Switches one packet (10-byte header + Ethernet frame) that arrived on port `fromName`.
   * The packet is a view the caller reuses after this returns.
   */
  forward(packet: Uint8Array, fromName: string, now: number): void {
    const from = this.#ports.get(fromName);
    if (!from) return; // a port detached while its last batch was in flight
    const rx = this.#counters.get(fromName)!;
    const bytes = packet.length - VNET_HDR_LEN;
    rx.rxFrames++;
    rx.rxBytes += bytes;
    if (packet.length < MIN_PACKET_BYTES) {
      this.drops.malformed++;
      return;
    }
    const dst = macAt(packet, DST_OFFSET);
    const src = macAt(packet, SRC_OFFSET);
    if (isGroupMac(src)) {
      this.drops.badSource++;
      return;
    }
    if (this.#role === "host") this.#forwardHost(packet, from, src, dst, bytes, now);
    else this.#forwardProxy(packet, from, src, dst, bytes, now);
  }

  #forwardHost(packet: Uint8Array, from: Port, src: Mac, dst: Mac, bytes: number, now: number) {
    const group = isGroupMac(dst);
    if (from.kind === "device") {
      const r = this.macs.learn(src, "device", now);
      if (r === "full") this.drops.tableFull++;
      else if (r === "new") {
        // A VM that left and came back: frames for it are delivered here again.
        this.#movedAway.returned(src);
        this.listener?.onMacLearned?.(src, "device", now);
      }
      this.observer?.observe(src, dst, bytes);
      if (group) return this.#sendTo(this.#uplink, packet, bytes);
      // A unicast frame to a VM on this same host reached the TAP only because the bridge
      // flooded it; the VM already has it.
      if (this.macs.lookup(dst, now) === "device") return;
      const rule = this.rules.lookup(src, dst, this.#usable);
      if (rule) return this.#sendByRule(rule, packet, bytes);
      return this.#sendTo(this.#uplink, packet, bytes);
    }
    // From a link: a frame claiming a local VM's address came back around or is forged.
    if (this.macs.lookup(src, now) === "device") {
      this.drops.loop++;
      return;
    }
    // A peer speaks only for its own VMs; the star is checked at the proxy.
    if (from.kind === "peer" && this.peerSources?.allows(from.name, src) === false) {
      this.drops.spoofed++;
      return;
    }
    if (group) {
      if (from.kind === "peer") {
        this.drops.groupOnFastPath++;
        return;
      }
      return this.#sendTo(this.#device, packet, bytes);
    }
    // A VM that just left this host: a peer that still sends it here (its rules are being
    // replaced) gets it passed on through the proxy, which knows where the VM is now.
    if (from.kind === "peer" && this.#movedAway.passOn(dst, now)) {
      return this.#sendTo(this.#uplink, packet, bytes);
    }
    const rule = this.rules.lookup(src, dst, this.#usableFromLink);
    if (rule) return this.#sendByRule(rule, packet, bytes);
    this.#sendTo(this.#device, packet, bytes);
  }

  /**
   * Host: VM `mac` no longer lives here (this host told the proxy so, or the proxy said it
   * moved). Frames for it that peers still send here go to the proxy for a while instead of
   * the device, where nobody would take them.
   */
  markMovedAway(mac: Mac, now: number): void {
    this.#movedAway.mark(mac, now);
    if (this.macs.get(mac)?.port === "device") this.macs.forget(mac);
  }

  #forwardProxy(packet: Uint8Array, from: Port, src: Mac, dst: Mac, bytes: number, now: number) {
    if (!this.#admitSource(src, from.name, now, packet)) return;
    if (from.kind === "device") this.observer?.observe(src, dst, bytes);
    if (this.neighbours !== null && this.#suppressed(packet, from, bytes, now)) return;
    if (isGroupMac(dst)) return this.#flood(packet, from, bytes);
    const rule = this.rules.lookup(src, dst, this.#usable);
    if (rule) return this.#sendByRule(rule, packet, bytes);
    const owner = this.macs.lookup(dst, now);
    if (owner === undefined) return this.#flood(packet, from, bytes);
    if (owner === from.name) {
      this.drops.hairpin++;
      return;
    }
    this.#sendTo(this.#ports.get(owner) ?? null, packet, bytes);
  }

  /** Proxy: learns from ARP/ND and answers for known addresses; true when it took the frame. */
  #suppressed(packet: Uint8Array, from: Port, bytes: number, now: number): boolean {
    const n = this.neighbours!;
    switch (n.inspect(packet, from.name, now)) {
      case "pass":
        return false;
      case "answer":
        this.#sendTo(from, n.reply, n.reply.length - VNET_HDR_LEN);
        return true;
      case "unicast":
        this.#sendTo(this.#ports.get(n.owner) ?? null, packet, bytes);
        return true;
      case "local":
        return true;
    }
  }

  /** Learns `src` behind `port`, applying the anti-spoofing rule to moves. */
  #admitSource(src: Mac, port: string, now: number, packet?: Uint8Array): boolean {
    const entry = this.macs.get(src);
    if (entry && entry.port !== port && this.#ports.has(entry.port)) {
      const verdict = this.movePolicy
        ? this.movePolicy.decide(src, entry.port, port, now)
        : now - entry.lastSeen < this.#moveQuietMs
        ? "refuse"
        : "move";
      if (verdict === "pending") {
        this.drops.claimPending++;
        if (packet) this.#held.hold(src, port, packet);
        return false;
      }
      if (verdict === "refuse") {
        this.drops.spoofed++;
        this.listener?.onMacRefused?.(src, port, entry.port, now);
        return false;
      }
    }
    return this.#learn(src, port, now, entry);
  }

  /** Learns `src` behind `port`; `entry` is its table entry, already looked up by the caller. */
  #learn(src: Mac, port: string, now: number, entry: Readonly<MacEntry> | undefined): boolean {
    if (!entry && this.#maxMacsPerPort > 0 && this.macs.countOn(port) >= this.#maxMacsPerPort) {
      this.drops.portFull++;
      return false;
    }
    const before = entry?.port;
    const r = this.macs.learn(src, port, now);
    if (r === "full") this.drops.tableFull++;
    else if (r === "new") this.listener?.onMacLearned?.(src, port, now);
    else if (r === "moved") this.listener?.onMacMoved?.(src, before!, port, now);
    return true;
  }

  /**
   * Moves `mac` behind port `to` now, as if its next frame had come from there: the move
   * policy authorised it after the fact (the old host confirmed the VM left). Returns false
   * when `to` is gone or the MAC is already there.
   */
  relocate(mac: Mac, to: string, now: number): boolean {
    const frames = this.#held.take(mac);
    const entry = this.macs.get(mac);
    if (!this.#ports.has(to) || entry?.port === to) return false;
    if (!this.#learn(mac, to, now, entry)) return false;
    // The frames held while the old host was asked go on now, as if the move had been
    // instant: a migrated VM's first frames are often ARP requests, and one lost costs the
    // VM its 1 s ARP retransmission.
    const port = this.#ports.get(to)!;
    if (frames?.port === to) {
      for (const p of frames.packets) {
        // Counted and checked when they arrived; switched now.
        this.#forwardProxy(p, port, mac, macAt(p, DST_OFFSET), p.length - VNET_HDR_LEN, now);
      }
    }
    return true;
  }

  /** Drops the frames held for `mac`'s claim (it was refused). */
  releaseHeld(mac: Mac): void {
    this.#held.release(mac);
  }

  #flood(packet: Uint8Array, from: Port, bytes: number): void {
    const list = this.#floodList.ports();
    for (let i = 0; i < list.length; i++) {
      if (list[i] !== from) this.#sendTo(list[i], packet, bytes);
    }
  }

  #sendByRule(
    rule: { target: string; frames: number; bytes: number },
    packet: Uint8Array,
    bytes: number,
  ): void {
    rule.frames++;
    rule.bytes += bytes;
    if (rule.target === DROP_TARGET) {
      this.drops.rule++;
      return;
    }
    this.#sendTo(this.#ports.get(rule.target) ?? null, packet, bytes);
  }

  #sendTo(port: Port | null, packet: Uint8Array, bytes: number): void {
    if (port === null) {
      this.drops.noRoute++;
      return;
    }
    const c = this.#counters.get(port.name)!;
    if (port.send(packet)) {
      c.txFrames++;
      c.txBytes += bytes;
    } else {
      c.txDrops++;
    }
  }
}
