/**
 * The global VM-by-VM traffic matrix, sparse: hosts report the bytes and frames each
 * (source MAC, destination MAC) pair sent since their last report; the matrix adds them up
 * until the next inference tick, which turns them into rates (bytes/s) and starts afresh.
 *
 * VMs are numbered as they appear ({@linkcode VmIndex}), so a pair is one number and the
 * matrix is a `Map<number, ...>`: thousands of VMs with realistic sparsity cost a few thousand
 * entries, never n². Pure: no clock, no I/O; time is passed in.
 *
 * @module
 */

/** Largest number of VMs a {@linkcode VmIndex} numbers (pair keys stay exact doubles). */
export const MAX_VM_IDS = 1 << 20;

/** MAC (text, lower case) <-> small integer id, bounded. */
export class VmIndex {
  readonly #ids = new Map<string, number>();
  readonly #macs: string[] = [];
  readonly #free: number[] = [];
  readonly #max: number;

  /** @param maxVms VMs numbered at most; beyond, {@linkcode idOf} refuses new ones. */
  constructor(maxVms: number = MAX_VM_IDS) {
    this.#max = Math.min(maxVms, MAX_VM_IDS);
  }

  /** Number of VMs known. */
  get size(): number {
    return this.#ids.size;
  }

  /** The id of `mac`, numbering it if new; -1 when the index is full. */
  idOf(mac: string): number {
    let id = this.#ids.get(mac);
    if (id === undefined) {
      if (this.#ids.size >= this.#max) return -1;
      id = this.#free.pop() ?? this.#macs.length;
      this.#ids.set(mac, id);
      this.#macs[id] = mac;
    }
    return id;
  }

  /** The id of `mac`, or undefined when unknown (never numbers it). */
  peek(mac: string): number | undefined {
    return this.#ids.get(mac);
  }

  /** The MAC of `id`. */
  macOf(id: number): string {
    return this.#macs[id];
  }

  /** Forgets every VM whose id `keep` rejects; returns how many. */
  retain(keep: (id: number) => boolean): number {
    let n = 0;
    for (const [mac, id] of this.#ids) {
      if (!keep(id)) {
        this.#ids.delete(mac);
        this.#free.push(id);
        n++;
      }
    }
    return n;
  }

  /** Forgets `mac`; its id may be reused. */
  forget(mac: string): void {
    const id = this.#ids.get(mac);
    if (id === undefined) return;
    this.#ids.delete(mac);
    this.#free.push(id);
  }
}

/** The key of the pair (src, dst) of VM ids. */
export function pairKey(src: number, dst: number): number {
  return src * MAX_VM_IDS + dst;
}

/** The (src, dst) ids of a pair key. */
export function pairOf(key: number): [number, number] {
  return [Math.floor(key / MAX_VM_IDS), key % MAX_VM_IDS];
}

/** One reported pair: bytes and frames sent from `src` to `dst` during the report interval. */
export interface PairCount {
  src: string;
  dst: string;
  bytes: number;
  frames: number;
}

/** Rates of one tick: pair key -> bytes/s. */
export type RateSample = Map<number, number>;

/**
 * Accumulates reported counts between ticks.
 *
 * @example
 * ```ts
 * import { TrafficMatrix } from "./traffic_matrix.ts";
 * const m = new TrafficMatrix();
 * m.add([{ src: "02:00:00:00:00:01", dst: "02:00:00:00:00:02", bytes: 5000, frames: 5 }]);
 * const rates = m.drain(0.5); // half a second since the last drain
 * if ([...rates.values()][0] !== 10_000) throw new Error("bytes/s");
 * ```
 */
export class TrafficMatrix {
  readonly vms: VmIndex;
  #bytes = new Map<number, number>();
  #frames = 0;
  #refused = 0;

  constructor(vms: VmIndex = new VmIndex()) {
    this.vms = vms;
  }

  /** Pairs accumulated since the last drain. */
  get pending(): number {
    return this.#bytes.size;
  }

  /** Counts refused because the VM index was full. */
  get refused(): number {
    return this.#refused;
  }

  /** Frames accumulated since the last drain (for the report of what was seen). */
  get frames(): number {
    return this.#frames;
  }

  /** Adds one report's pairs. Self-pairs and non-positive counts are ignored. */
  add(pairs: readonly PairCount[]): void {
    for (const p of pairs) {
      if (p.src === p.dst || !(p.bytes > 0)) continue;
      const s = this.vms.idOf(p.src);
      const d = this.vms.idOf(p.dst);
      if (s < 0 || d < 0) {
        this.#refused++;
        continue;
      }
      const k = pairKey(s, d);
      this.#bytes.set(k, (this.#bytes.get(k) ?? 0) + p.bytes);
      this.#frames += p.frames > 0 ? p.frames : 0;
    }
  }

  /** Returns the rates (bytes/s) over the `seconds` since the last drain and starts afresh. */
  drain(seconds: number): RateSample {
    const out: RateSample = new Map();
    if (seconds > 0) { for (const [k, b] of this.#bytes) out.set(k, b / seconds); }
    this.#bytes = new Map();
    this.#frames = 0;
    return out;
  }
}
