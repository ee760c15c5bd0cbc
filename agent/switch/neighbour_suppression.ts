/**
 * ARP and IPv6 neighbour-discovery suppression at the proxy, as EVPN does it (RFC 7432 §10,
 * RFC 9161): the proxy learns who holds which address from the neighbour messages it
 * forwards, and answers a broadcast request for a known address itself instead of flooding it
 * to every host, so broadcast traffic does not grow with the number of hosts.
 *
 *     packet, port ──parseNeighbour──> learn the sender's claim (only from its own MAC, on its
 *                                      own port) ──> is it a request to everyone?
 *        no, or target unknown, aged, contested, owner gone ──> "pass" (switched as usual)
 *        owner behind the asking port ────────────────────────> "local" (it already has it)
 *        ND owner whose router flag is unknown ───────────────> "unicast" to the owner's port
 *        otherwise ───────────────────────────────────────────> "answer" (reply in `reply`)
 *
 * Why answer rather than pass the request to the owner alone: it is the cheapest (two frames
 * cross the proxy instead of four, the owner's link carries nothing), and the answer says
 * only what the owner said itself, in a message the proxy forwarded from it on the port the
 * MAC table gives it. It cannot go stale with a move: a binding holds a MAC, never a port;
 * the MAC table is asked at each use, so a migrated VM's binding follows its MAC, and a MAC
 * that aged out or left with its host takes its bindings with it. An address two MACs claimed
 * lately is contested and flooded, as a LAN would, until one of them has been quiet long
 * enough. Gratuitous ARP, probes and DAD (announcements) are always flooded: everyone must see
 * them. IPv6 is answered only once an advertisement told the owner's router flag (a wrong one
 * would make the asker drop a router); until then the solicitation goes to the owner alone,
 * whose advertisement teaches the flag.
 *
 * Pure: `now` is passed in, the MAC table is read through an interface, replies go in one
 * scratch buffer. A frame that is not ARP or ND costs one EtherType compare (IPv6: two more).
 *
 * @module
 */

import { etherType, type Mac, srcMac } from "./ethernet.ts";
import {
  ETHERTYPE_ARP,
  ETHERTYPE_IPV6,
  newNeighbourMessage,
  parseNeighbour,
  ReplyBuilder,
} from "./neighbour_frame.ts";
import { NeighbourTable } from "./neighbour_table.ts";

/** Where a MAC lives now: the switch's MAC table. */
export interface MacLocator {
  lookup(mac: Mac, now: number): string | undefined;
}

/** What the switch does with the frame it asked about. */
export type NeighbourVerdict = "pass" | "answer" | "unicast" | "local";

/** Broadcast requests the proxy kept from flooding, by how; they only grow. */
export interface NeighbourSuppressed {
  /** Answered by the proxy in the owner's name. */
  answered: number;
  /** Sent to the owner's port alone (ND before the owner's router flag is known). */
  unicast: number;
  /** Dropped: the owner is behind the asking port, whose own bridge or LAN delivered it. */
  local: number;
}

/** Broadcast requests left to flood, by reason; they only grow. */
export interface NeighbourFloods {
  /** No live binding for the target (never learned, aged, or its MAC is gone). */
  unknown: number;
  /** Another MAC claimed the target lately: both may answer, as on a LAN. */
  contested: number;
  /** Gratuitous ARP, ARP probes, duplicate address detection: everyone must see them. */
  announcement: number;
  /** The asker's own claim failed the checks below, so it gets no answer from the proxy. */
  unverified: number;
}

/** Neighbour messages whose claim was not learned, by reason; they only grow. */
export interface NeighbourRefusals {
  /** ARP or ND that breaks its format. */
  malformed: number;
  /** The claimed MAC is not the frame's Ethernet source (or an ND message has no option). */
  senderMismatch: number;
  /** The frame came from a port the MAC table does not give the claimed MAC. */
  notOwner: number;
  /** Another MAC holds the address and confirmed it lately. */
  conflict: number;
  /** The MAC already holds as many addresses as one may. */
  macFull: number;
}

/** Settings of a {@linkcode NeighbourSuppressor}. */
export interface NeighbourSuppressorOptions {
  /** The switch's MAC table: who owns a MAC, and the port that reaches it. */
  macs: MacLocator;
  /** Most bindings kept. */
  maxEntries: number;
  /** A binding its MAC has not confirmed for this long is forgotten. */
  ageMs: number;
  /**
   * A binding confirmed this recently is fresh: another MAC's claim is refused and the address
   * is contested (flooded, not answered) this long after the last such claim; default 10 s.
   */
  contestMs?: number;
  /** Most addresses one MAC may hold; default 32 (IPv4, link-local, SLAAC, privacy...). */
  maxPerMac?: number;
}

/**
 * Learns bindings from the neighbour messages a proxy switches and decides, for a broadcast
 * request, whether the proxy answers it, sends it to the owner alone, or lets it flood.
 *
 * @example A request for an address its owner announced is answered, not flooded
 * ```ts
 * import { NeighbourSuppressor } from "./neighbour_suppression.ts";
 * const where = new Map([[0x020000000001, "host:a"], [0x020000000002, "host:b"]]);
 * const n = new NeighbourSuppressor({ macs: { lookup: (m) => where.get(m) }, maxEntries: 100, ageMs: 60_000 });
 * const arp = (src: number, ip: number, target: number) => {
 *   const p = new Uint8Array(10 + 42);
 *   p.fill(0xff, 10, 16);
 *   p.set([2, 0, 0, 0, 0, src, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, src, 10, 0, 0, ip], 16);
 *   p.set([10, 0, 0, target], 48);
 *   return p;
 * };
 * if (n.inspect(arp(2, 2, 9), "host:b", 0) !== "pass") throw new Error("9 is unknown");
 * if (n.inspect(arp(1, 1, 2), "host:a", 1) !== "answer") throw new Error("2 is known");
 * if (n.reply[10 + 11] !== 2 || n.suppressed.answered !== 1) throw new Error("from 2");
 * ```
 */
export class NeighbourSuppressor {
  readonly table: NeighbourTable;
  readonly suppressed: NeighbourSuppressed = { answered: 0, unicast: 0, local: 0 };
  readonly floods: NeighbourFloods = { unknown: 0, contested: 0, announcement: 0, unverified: 0 };
  readonly refusals: NeighbourRefusals = {
    malformed: 0,
    senderMismatch: 0,
    notOwner: 0,
    conflict: 0,
    macFull: 0,
  };
  /** After "answer": the reply packet, a view reused by the next call. */
  reply: Uint8Array = new Uint8Array(0);
  /** After "unicast": the owner's port. */
  owner = "";

  readonly #macs: MacLocator;
  readonly #message = newNeighbourMessage();
  readonly #replies = new ReplyBuilder();

  constructor(options: NeighbourSuppressorOptions) {
    this.#macs = options.macs;
    this.table = new NeighbourTable({
      maxEntries: options.maxEntries,
      ageMs: options.ageMs,
      contestMs: options.contestMs ?? 10_000,
      maxPerMac: options.maxPerMac ?? 32,
    });
  }

  /**
   * Learns from `packet` (virtio-net header + frame), which arrived on `port` and whose source
   * MAC the switch has already admitted, and says what to do with it.
   */
  inspect(packet: Uint8Array, port: string, now: number): NeighbourVerdict {
    const type = etherType(packet);
    if (type !== ETHERTYPE_ARP && type !== ETHERTYPE_IPV6) return "pass";
    const m = this.#message;
    const parsed = parseNeighbour(packet, m);
    if (parsed !== "ok") {
      if (parsed === "malformed") this.refusals.malformed++;
      return "pass";
    }
    const verified = m.claimIp !== null && this.#learn(packet, port, now);
    if (!m.request || !m.toGroup) return "pass";
    if (m.claimIp === null || m.claimIp === m.targetIp) {
      this.floods.announcement++;
      return "pass";
    }
    if (!verified) {
      this.floods.unverified++;
      return "pass";
    }
    return this.#decide(packet, port, now);
  }

  /** Records the message's claim if it is its sender's own; returns whether it was. */
  #learn(packet: Uint8Array, port: string, now: number): boolean {
    const m = this.#message;
    if (m.claimMac === null || m.claimMac !== srcMac(packet)) {
      this.refusals.senderMismatch++;
      return false;
    }
    if (this.#macs.lookup(m.claimMac, now) !== port) {
      this.refusals.notOwner++;
      return false;
    }
    const r = this.table.claim(m.claimIp!, m.claimMac, now);
    if (r === "refused") this.refusals.conflict++;
    else if (r === "macFull") this.refusals.macFull++;
    else if (m.router !== null) this.table.setRouter(m.claimIp!, m.claimMac, m.router);
    return true;
  }

  /** The verdict on a verified broadcast request for someone else's address. */
  #decide(packet: Uint8Array, port: string, now: number): NeighbourVerdict {
    const m = this.#message;
    const binding = this.table.lookup(m.targetIp!, now);
    if (binding === undefined) {
      this.floods.unknown++;
      return "pass";
    }
    if (binding.contestedUntil > now) {
      this.floods.contested++;
      return "pass";
    }
    const owner = this.#macs.lookup(binding.mac, now);
    if (owner === undefined) {
      this.table.forget(m.targetIp!); // its MAC aged out or left with its host
      this.floods.unknown++;
      return "pass";
    }
    if (owner === port) {
      this.suppressed.local++;
      return "local";
    }
    if (m.family === 6 && binding.router === null) {
      this.owner = owner;
      this.suppressed.unicast++;
      return "unicast";
    }
    this.reply = m.family === 4
      ? this.#replies.arpReply(packet, binding)
      : this.#replies.advertisement(packet, binding);
    this.suppressed.answered++;
    return "answer";
  }
}
