/**
 * A link's bounded outgoing queue: messages are encoded straight into one buffer, and
 * everything queued while the previous write was in flight leaves in the next single write.
 *
 * That is adaptive batching without a timer: an idle link writes a frame at once (lowest
 * latency), a busy link coalesces every frame that arrived during the last write (fewest
 * syscalls and TLS records). Two buffers swap roles, so encoding never waits on the socket.
 *
 * The buffers start at one page ({@linkcode INITIAL_QUEUE_BYTES}, allocated at the first
 * message) and double when a burst needs it; once a link has carried only small batches for
 * {@linkcode SHRINK_AFTER_MS} (its bulk traffic ended, or moved to a fast path), they go back
 * to their first size. An idle link costs two pages, so a proxy holds ten thousand of them,
 * and a busy past does not pin megabytes per link.
 *
 * Frames are dropped (and counted) when the queue holds `capacityBytes`; control messages
 * may use a further `capacityBytes` of headroom so that a flood of frames cannot starve the
 * control channel, and are dropped (counted apart) beyond that.
 *
 * @module
 */

import { HEADER_LEN, MessageType, writeHeader } from "./wire.ts";

/** How long only small batches must leave before grown buffers are given back. */
export const SHRINK_AFTER_MS = 5_000;

/**
 * First size of each of the two buffers: a page holds an idle link's keepalives and control
 * messages; a burst doubles it (a few copies, then the buffer fits the burst).
 */
export const INITIAL_QUEUE_BYTES = 4096;

const EMPTY = new Uint8Array(0);

/** Counters of a {@linkcode SendQueue}; they only grow. */
export interface SendQueueStats {
  /** Frames accepted for sending. */
  frames: number;
  /** Bytes of frames accepted (bodies only). */
  frameBytes: number;
  /** Frames refused because the queue was full. */
  frameDrops: number;
  /** Non-frame messages refused because even the headroom was full. */
  controlDrops: number;
  /** Writes handed out by {@linkcode SendQueue.take}. */
  batches: number;
}

/**
 * Double-buffered, bounded message queue for one link.
 *
 * @example
 * ```ts
 * import { SendQueue } from "./send_queue.ts";
 * const q = new SendQueue({ capacityBytes: 1 << 20 });
 * q.pushFrame(new Uint8Array(60));
 * q.pushFrame(new Uint8Array(60));
 * const batch = q.take();
 * if (batch?.length !== 2 * (4 + 60)) throw new Error("one write for both frames");
 * q.release();
 * ```
 */
export class SendQueue {
  readonly #capacity: number;
  readonly #initial: number;
  readonly #now: () => number;
  /** Last time a batch needed more than the initial size. */
  #lastBig: number;
  #fill: Uint8Array;
  #spare: Uint8Array;
  #used = 0;
  #inFlight = false;
  readonly stats: SendQueueStats = {
    frames: 0,
    frameBytes: 0,
    frameDrops: 0,
    controlDrops: 0,
    batches: 0,
  };

  constructor(
    options: { capacityBytes: number; initialBytes?: number; now?: () => number },
  ) {
    if (!(options.capacityBytes >= 70_000)) {
      throw new RangeError(
        `Cannot create send queue: capacityBytes must be at least 70000 (one superframe), got ${options.capacityBytes}`,
      );
    }
    this.#capacity = options.capacityBytes;
    this.#initial = Math.min(options.initialBytes ?? INITIAL_QUEUE_BYTES, 2 * this.#capacity);
    this.#now = options.now ?? (() => performance.now());
    this.#lastBig = this.#now();
    // Allocated when first needed: a link that never sends costs nothing here.
    this.#fill = EMPTY;
    this.#spare = EMPTY;
  }

  /** Bytes held by the two buffers (what the queue costs in memory now). */
  get bufferBytes(): number {
    return this.#fill.length + this.#spare.length;
  }

  /** Bytes waiting (not yet handed out by {@linkcode take}). */
  get queuedBytes(): number {
    return this.#used;
  }

  /** True while a batch from {@linkcode take} has not been released. */
  get inFlight(): boolean {
    return this.#inFlight;
  }

  /** Queues one packet (header + frame) as a FRAME message; false when dropped. */
  pushFrame(packet: Uint8Array): boolean {
    const need = HEADER_LEN + packet.length;
    if (this.#used + need > this.#capacity) {
      this.stats.frameDrops++;
      return false;
    }
    const at = this.#reserve(need);
    writeHeader(this.#fill, at, MessageType.FRAME, packet.length);
    this.#fill.set(packet, at + HEADER_LEN);
    this.stats.frames++;
    this.stats.frameBytes += packet.length;
    return true;
  }

  /** Queues any other message; false when dropped (beyond the control headroom). */
  pushMessage(type: number, body: Uint8Array): boolean {
    const need = HEADER_LEN + body.length;
    if (this.#used + need > 2 * this.#capacity) {
      this.stats.controlDrops++;
      return false;
    }
    const at = this.#reserve(need);
    writeHeader(this.#fill, at, type, body.length);
    this.#fill.set(body, at + HEADER_LEN);
    return true;
  }

  /**
   * Hands out everything queued as one buffer to write, or null when nothing is queued or a
   * batch is still in flight. The view stays valid until {@linkcode release}.
   */
  take(): Uint8Array | null {
    if (this.#inFlight || this.#used === 0) return null;
    const out = this.#fill.subarray(0, this.#used);
    [this.#fill, this.#spare] = [this.#spare, this.#fill];
    this.#maybeShrink(this.#used);
    this.#used = 0;
    this.#inFlight = true;
    this.stats.batches++;
    return out;
  }

  /** Marks the batch from {@linkcode take} as written; its buffer is reused. */
  release(): void {
    this.#inFlight = false;
  }

  /** Drops everything queued (link closing). */
  clear(): void {
    this.#used = 0;
  }

  /** Gives the new fill buffer (the batch's buffer stays in flight) back its first size. */
  #maybeShrink(batchBytes: number): void {
    // The clock is read only when a buffer is above its first size (an idle link never).
    if (batchBytes > this.#initial) {
      this.#lastBig = this.#now();
    } else if (
      this.#fill.length > this.#initial && this.#now() - this.#lastBig >= SHRINK_AFTER_MS
    ) {
      this.#fill = new Uint8Array(this.#initial);
    }
  }

  #reserve(need: number): number {
    if (this.#used + need > this.#fill.length) {
      let size = Math.max(this.#fill.length, this.#initial);
      while (size < this.#used + need) size *= 2;
      const next = new Uint8Array(size);
      next.set(this.#fill.subarray(0, this.#used));
      this.#fill = next;
    }
    const at = this.#used;
    this.#used += need;
    return at;
  }
}
