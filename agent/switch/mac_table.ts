/**
 * Who owns a MAC: the port a source address was last seen on, with ageing.
 *
 * This is half of the switching decision (tinc keeps the same split): the MAC table says
 * *who* holds an address, the forwarding table and the ports say *which link* reaches them,
 * so links can come and go without forgetting learned addresses. Time is passed in; the table
 * never reads a clock.
 *
 * @module
 */

import type { Mac } from "./ethernet.ts";

/** What the table knows of one address. */
export interface MacEntry {
  /** Port the address was last seen on. */
  port: string;
  /** When it was first seen on that port (ms). */
  since: number;
  /** When it was last seen (ms). */
  lastSeen: number;
  /** When it was first seen at all (ms); survives moves. */
  firstSeen: number;
}

/** Outcome of {@linkcode MacTable.learn}. */
export type LearnResult = "new" | "refreshed" | "moved" | "full";

/** Counters; they only grow. */
export interface MacTableStats {
  learned: number;
  moved: number;
  aged: number;
  refusedFull: number;
}

/**
 * Bounded MAC-to-port table with ageing.
 *
 * @example
 * ```ts
 * import { MacTable } from "./mac_table.ts";
 * const t = new MacTable({ maxEntries: 10, ageMs: 1000 });
 * t.learn(0x020000000001, "host:a", 0);
 * if (t.lookup(0x020000000001, 500) !== "host:a") throw new Error("learned");
 * if (t.lookup(0x020000000001, 2000) !== undefined) throw new Error("aged");
 * ```
 */
export class MacTable {
  readonly #entries = new Map<Mac, MacEntry>();
  /** Entries per port, for per-port bounds. */
  /** The addresses on each port: a port that goes forgets its own, not a scan of all. */
  readonly #perPort = new Map<string, Set<Mac>>();
  readonly #maxEntries: number;
  readonly #ageMs: number;
  #version = 0;
  readonly stats: MacTableStats = { learned: 0, moved: 0, aged: 0, refusedFull: 0 };
  /**
   * Told of every entry a sweep removes, once it is gone (with the port it was on): an address
   * that aged out left its port as surely as one that moved, and whoever acted on its learning
   * must hear of it too (the proxy's fast-path peers, proxy/mac_events.ts). Explicit forgets
   * are not reported; their callers know.
   */
  onAged: ((mac: Mac, entry: Readonly<MacEntry>, now: number) => void) | null = null;

  constructor(options: { maxEntries: number; ageMs: number }) {
    this.#maxEntries = options.maxEntries;
    this.#ageMs = options.ageMs;
  }

  /**
   * Bumped whenever what {@linkcode lookup} can answer changes other than by ageing: an
   * address added, moved, forgotten or swept, or an aged one seen again. A view derived from
   * the table (the proxy's VM -> host map, proxy/vm_hosts.ts) is rebuilt only then, or when
   * one of its entries would age out.
   */
  get version(): number {
    return this.#version;
  }

  /** How long an address is held without being seen. */
  get ageMs(): number {
    return this.#ageMs;
  }

  /** Number of addresses held (aged ones included until the next sweep). */
  get size(): number {
    return this.#entries.size;
  }

  /** Records that `mac` was seen on `port` at `now`. */
  learn(mac: Mac, port: string, now: number): LearnResult {
    const e = this.#entries.get(mac);
    if (e) {
      if (now - e.lastSeen > this.#ageMs) this.#version++; // aged, and back
      e.lastSeen = now;
      if (e.port === port) return "refreshed";
      this.#version++;
      this.#index(e.port, mac, false);
      this.#index(port, mac, true);
      e.port = port;
      e.since = now;
      this.stats.moved++;
      return "moved";
    }
    if (this.#entries.size >= this.#maxEntries) {
      this.sweep(now);
      if (this.#entries.size >= this.#maxEntries) {
        this.stats.refusedFull++;
        return "full";
      }
    }
    this.#version++;
    this.#entries.set(mac, { port, since: now, lastSeen: now, firstSeen: now });
    this.#index(port, mac, true);
    this.stats.learned++;
    return "new";
  }

  /** The port that holds `mac`, or undefined when unknown or aged out. */
  lookup(mac: Mac, now: number): string | undefined {
    const e = this.#entries.get(mac);
    if (!e) return undefined;
    return now - e.lastSeen > this.#ageMs ? undefined : e.port;
  }

  /** The whole entry for `mac` (aged or not), for policy decisions such as moves. */
  get(mac: Mac): Readonly<MacEntry> | undefined {
    return this.#entries.get(mac);
  }

  /** Forgets `mac`; returns whether it was known. */
  forget(mac: Mac): boolean {
    const e = this.#entries.get(mac);
    if (!e) return false;
    this.#index(e.port, mac, false);
    this.#version++;
    return this.#entries.delete(mac);
  }

  /** How many addresses port `port` holds (aged ones included until the next sweep). */
  countOn(port: string): number {
    return this.#perPort.get(port)?.size ?? 0;
  }

  #index(port: string, mac: Mac, on: boolean): void {
    let set = this.#perPort.get(port);
    if (on) {
      if (!set) this.#perPort.set(port, set = new Set());
      set.add(mac);
    } else if (set) {
      set.delete(mac);
      if (set.size === 0) this.#perPort.delete(port);
    }
  }

  /** Forgets every address on `port` (the port went away); returns them. */
  forgetPort(port: string): Mac[] {
    const gone = [...this.#perPort.get(port) ?? []];
    for (const mac of gone) this.#entries.delete(mac);
    if (gone.length) this.#version++;
    this.#perPort.delete(port);
    return gone;
  }

  /** Removes aged entries, telling {@linkcode onAged} of each; returns how many. */
  sweep(now: number): number {
    const aged: [Mac, MacEntry][] = [];
    for (const [mac, e] of this.#entries) {
      if (now - e.lastSeen > this.#ageMs) {
        this.#entries.delete(mac);
        this.#index(e.port, mac, false);
        aged.push([mac, e]);
      }
    }
    this.stats.aged += aged.length;
    if (aged.length) this.#version++;
    // After the sweep: a listener that looks at or learns into the table sees it settled.
    for (const [mac, e] of aged) this.onAged?.(mac, e, now);
    return aged.length;
  }

  /** Every entry, for status output. */
  entries(): IterableIterator<[Mac, Readonly<MacEntry>]> {
    return this.#entries.entries();
  }
}
