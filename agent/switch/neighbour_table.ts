/**
 * Which MAC holds which IP address, as the neighbour messages the proxy forwards say it: the
 * table behind ARP and neighbour-discovery suppression.
 *
 *     claim(ip, mac, now) ──> new | refreshed | replaced | refused (a fresh owner holds it) | macFull
 *     lookup(ip, now)     ──> binding, unless aged
 *
 * A binding says nothing about ports: the caller resolves its MAC through the MAC table at
 * the moment it uses it, so a binding follows its MAC's moves and is useless once the MAC is
 * gone. Whether a claim may be recorded at all (the frame came from that MAC, on the port that
 * owns it) is the caller's check; this table only arbitrates between MACs claiming one IP.
 *
 * Bounded: at most `maxEntries` bindings (the least recently confirmed is evicted) and
 * `maxPerMac` per MAC (a VM has a few addresses; one host must not fill the table). Entries sit
 * in the map in order of last confirmation, so aged ones are always at its head. Time is passed
 * in; the table never reads a clock.
 *
 * @module
 */

import type { Mac } from "./ethernet.ts";
import type { IpKey } from "./neighbour_frame.ts";

/** What the table knows of one IP address. */
export interface NeighbourBinding {
  /** The MAC that holds the address. */
  mac: Mac;
  /** When that MAC first claimed it (ms). */
  learnedAt: number;
  /** When that MAC last claimed it (ms). */
  confirmedAt: number;
  /** IPv6: whether the owner said it is a router (NA R flag); null until an NA tells. */
  router: boolean | null;
  /** Until when another MAC's recent claim makes the binding uncertain (ms). */
  contestedUntil: number;
}

/** Outcome of {@linkcode NeighbourTable.claim}. */
export type ClaimResult = "new" | "refreshed" | "replaced" | "refused" | "macFull";

/** Counters; they only grow. */
export interface NeighbourTableStats {
  learned: number;
  /** A binding passed to another MAC (its owner had aged or gone quiet). */
  replaced: number;
  /** A MAC claimed an address a live binding gives to another MAC. */
  conflicts: number;
  aged: number;
  /** Bindings dropped to make room (the table was full of live ones). */
  evicted: number;
}

/** Settings of a {@linkcode NeighbourTable}. */
export interface NeighbourTableOptions {
  maxEntries: number;
  /** A binding not confirmed for this long is forgotten. */
  ageMs: number;
  /**
   * A binding confirmed within this long is fresh: another MAC's claim is refused, and the
   * address stays contested (not answered for) this long after the last such claim.
   */
  contestMs: number;
  /** Most addresses one MAC may hold. */
  maxPerMac: number;
}

/**
 * Bounded IP-to-MAC table with ageing and conflict arbitration.
 *
 * @example A second MAC's claim is refused while the owner is fresh, accepted once it is quiet
 * ```ts
 * import { NeighbourTable } from "./neighbour_table.ts";
 * const t = new NeighbourTable({ maxEntries: 10, ageMs: 60_000, contestMs: 5_000, maxPerMac: 4 });
 * t.claim(0x0a000001, 0xa, 0);
 * if (t.claim(0x0a000001, 0xb, 1_000) !== "refused") throw new Error("fresh owner");
 * if (t.claim(0x0a000001, 0xb, 7_000) !== "replaced") throw new Error("quiet owner");
 * if (t.lookup(0x0a000001, 7_000)?.mac !== 0xb || t.stats.conflicts !== 2) throw new Error();
 * ```
 */
export class NeighbourTable {
  readonly #entries = new Map<IpKey, NeighbourBinding>();
  readonly #perMac = new Map<Mac, number>();
  readonly #options: NeighbourTableOptions;
  readonly stats: NeighbourTableStats = {
    learned: 0,
    replaced: 0,
    conflicts: 0,
    aged: 0,
    evicted: 0,
  };

  constructor(options: NeighbourTableOptions) {
    if (!(options.maxEntries >= 1 && options.maxPerMac >= 1)) {
      throw new RangeError(
        `Cannot create a neighbour table: maxEntries (${options.maxEntries}) and maxPerMac ` +
          `(${options.maxPerMac}) must be at least 1`,
      );
    }
    this.#options = { ...options };
  }

  /** Number of bindings held (aged ones included until they are swept). */
  get size(): number {
    return this.#entries.size;
  }

  /** Records that `mac` says it holds `ip` at `now`. */
  claim(ip: IpKey, mac: Mac, now: number): ClaimResult {
    const { ageMs, contestMs } = this.#options;
    const e = this.#entries.get(ip);
    if (e === undefined) return this.#add(ip, mac, now);
    if (e.mac === mac) {
      e.confirmedAt = now;
      this.#touch(ip, e);
      return "refreshed";
    }
    const live = now - e.confirmedAt <= ageMs;
    if (live) {
      this.stats.conflicts++;
      if (now - e.confirmedAt < contestMs) {
        e.contestedUntil = now + contestMs;
        return "refused";
      }
    }
    if (this.#countOf(mac) >= this.#options.maxPerMac && this.#expire(now, mac)) return "macFull";
    this.#count(e.mac, -1);
    this.#count(mac, 1);
    e.mac = mac;
    e.learnedAt = e.confirmedAt = now;
    e.router = null;
    this.#touch(ip, e);
    this.stats.replaced++;
    return "replaced";
  }

  /** The binding of `ip`, or undefined when unknown or aged. */
  lookup(ip: IpKey, now: number): Readonly<NeighbourBinding> | undefined {
    const e = this.#entries.get(ip);
    return e === undefined || now - e.confirmedAt > this.#options.ageMs ? undefined : e;
  }

  /** Records the router flag `mac` gave for `ip` (an advertisement), if `mac` holds it. */
  setRouter(ip: IpKey, mac: Mac, router: boolean): void {
    const e = this.#entries.get(ip);
    if (e?.mac === mac) e.router = router;
  }

  /** Forgets `ip` (its MAC is gone); returns whether it was known. */
  forget(ip: IpKey): boolean {
    const e = this.#entries.get(ip);
    if (e === undefined) return false;
    this.#entries.delete(ip);
    this.#count(e.mac, -1);
    return true;
  }

  /** Every binding, for status output. */
  entries(): IterableIterator<[IpKey, Readonly<NeighbourBinding>]> {
    return this.#entries.entries();
  }

  #add(ip: IpKey, mac: Mac, now: number): ClaimResult {
    const { maxEntries, maxPerMac } = this.#options;
    if (this.#countOf(mac) >= maxPerMac && this.#expire(now, mac)) return "macFull";
    if (this.#entries.size >= maxEntries && this.#expire(now, null)) {
      const oldest = this.#entries.keys().next().value!;
      this.forget(oldest);
      this.stats.evicted++;
    }
    this.#entries.set(ip, {
      mac,
      learnedAt: now,
      confirmedAt: now,
      router: null,
      contestedUntil: 0,
    });
    this.#count(mac, 1);
    this.stats.learned++;
    return "new";
  }

  /**
   * Forgets aged bindings from the head of the map (least recently confirmed first) and says
   * whether the bound still binds: `mac` still holds `maxPerMac`, or (null) the table is full.
   * Each binding is swept once, so the cost is amortised over the claims that made it.
   */
  #expire(now: number, mac: Mac | null): boolean {
    for (const [ip, e] of this.#entries) {
      if (now - e.confirmedAt <= this.#options.ageMs) break;
      this.forget(ip);
      this.stats.aged++;
    }
    return mac === null
      ? this.#entries.size >= this.#options.maxEntries
      : this.#countOf(mac) >= this.#options.maxPerMac;
  }

  /** Moves `ip` to the tail: the map stays in order of last confirmation. */
  #touch(ip: IpKey, e: NeighbourBinding): void {
    this.#entries.delete(ip);
    this.#entries.set(ip, e);
  }

  #countOf(mac: Mac): number {
    return this.#perMac.get(mac) ?? 0;
  }

  #count(mac: Mac, delta: number): void {
    const n = this.#countOf(mac) + delta;
    if (n > 0) this.#perMac.set(mac, n);
    else this.#perMac.delete(mac);
  }
}
