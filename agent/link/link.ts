/**
 * A link: one established stream (TLS over TCP in production) to another agent, after its
 * handshake. It is a switch {@linkcode Port} on the sending side and a message pump on the
 * receiving side.
 *
 *     send:    Switch.forward -> Link.send -> SendQueue (encode, bounded) -> one write per batch
 *     receive: conn.read -> StreamReader (in place) -> FRAME -> handlers.onFrame -> Switch.forward
 *                                                   -> CONTROL -> handlers.onControl
 *                                                   -> PING/PONG keepalive, GOODBYE close
 *
 * A link never throws into its owner: a protocol error, a dead peer (nothing received for
 * `deadAfterMs`) or a failed write closes this link alone, with one log line, and
 * `handlers.onClose` tells the owner.
 *
 * @module
 */

import type { Port, PortKind } from "../switch/switch.ts";
import { type Clock, systemClock } from "../clock.ts";
import { logger } from "../log.ts";
import { VNET_HDR_LEN } from "../packet/layout.ts";
import { SendQueue, type SendQueueStats } from "./send_queue.ts";
import { HEADER_LEN, MessageType, ProtocolError, type StreamReader, writeHeader } from "./wire.ts";

export type { Conn } from "./transport.ts";
import type { Conn } from "./transport.ts";

/** What a link reports to its owner. */
export interface LinkHandlers {
  /** A packet arrived; the view is valid only during the call. */
  onFrame(packet: Uint8Array, link: Link): void;
  /** A control message arrived (already JSON-parsed; the owner validates its shape). */
  onControl?(message: unknown, link: Link): void;
  /** The link closed; `reason` is one human-readable line. */
  onClose?(reason: string, link: Link): void;
}

/** Link settings. */
export interface LinkOptions {
  /** Bound of the send queue in bytes. */
  queueBytes: number;
  /** Ping interval when idle. */
  keepaliveMs: number;
  /** Close when nothing was received for this long. */
  deadAfterMs: number;
  /** Keepalive timers and round-trip times; the system clock unless a test drives time. */
  clock?: Clock;
}

/** Counters and health of a link. */
export interface LinkStats extends SendQueueStats {
  rxFrames: number;
  rxBytes: number;
  /** Last measured round-trip time in ms (keepalive), or null before the first PONG. */
  rttMs: number | null;
  /** When the link came up (ms since epoch). */
  upSince: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * An established link. Construct it after the handshake, with the reader that holds any bytes
 * already received, then call {@linkcode run}.
 */
export class Link implements Port {
  readonly name: string;
  readonly kind: PortKind;
  /** Peer's identity (host name, or `proxy`). */
  readonly peer: string;
  readonly #conn: Conn;
  readonly #reader: StreamReader;
  readonly #queue: SendQueue;
  readonly #handlers: LinkHandlers;
  readonly #opts: LinkOptions;
  readonly #rx = { frames: 0, bytes: 0 };
  #rttMs: number | null = null;
  readonly #clock: Clock;
  readonly #upSince: number;
  #lastRx: number;
  #lastTx: number;
  #flushScheduled = false;
  #closed = false;
  #closeReason = "";
  readonly #pingBody = new Uint8Array(8);
  readonly #pingView = new DataView(this.#pingBody.buffer);
  readonly #log = logger("link");

  constructor(
    init: { name: string; kind: PortKind; peer: string; conn: Conn; reader: StreamReader },
    handlers: LinkHandlers,
    options: LinkOptions,
  ) {
    this.name = init.name;
    this.kind = init.kind;
    this.peer = init.peer;
    this.#conn = init.conn;
    this.#reader = init.reader;
    // A link exists only once its peer is authenticated: full-size messages from here on.
    this.#reader.authenticated();
    this.#handlers = handlers;
    this.#opts = options;
    this.#clock = options.clock ?? systemClock;
    this.#upSince = this.#clock.now();
    this.#lastRx = this.#lastTx = this.#clock.monotonic();
    this.#queue = new SendQueue({ capacityBytes: options.queueBytes });
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Why it closed ("" while open). */
  get closeReason(): string {
    return this.#closeReason;
  }

  /** A snapshot of the counters. */
  stats(): LinkStats {
    return {
      ...this.#queue.stats,
      rxFrames: this.#rx.frames,
      rxBytes: this.#rx.bytes,
      rttMs: this.#rttMs,
      upSince: this.#upSince,
    };
  }

  /** Queues a packet; the write happens after the current batch (see module doc). */
  send(packet: Uint8Array): boolean {
    if (this.#closed || !this.#queue.pushFrame(packet)) return false;
    this.#scheduleFlush();
    return true;
  }

  /** Queues a control message (JSON); false if the link is closed or the queue is full. */
  sendControl(message: unknown): boolean {
    return this.#sendJson(MessageType.CONTROL, message);
  }

  /**
   * Pumps received messages until the link closes or `signal` aborts; never rejects.
   * Also runs the keepalive.
   */
  async run(signal: AbortSignal): Promise<void> {
    const onAbort = () => this.close("shutting down");
    signal.addEventListener("abort", onAbort, { once: true });
    const timer = this.#clock.every(
      Math.max(50, this.#opts.keepaliveMs / 2),
      () => this.#keepalive(),
    );
    try {
      // Messages that arrived together with the end of the handshake.
      this.#dispatchBuffered();
      while (!this.#closed) {
        const space = this.#reader.space();
        let n: number | null;
        try {
          n = await this.#conn.read(space);
        } catch (e) {
          this.close(`read failed: ${(e as Error).message}`, false);
          break;
        }
        if (n === null) {
          this.close("peer closed the connection", false);
          break;
        }
        this.#lastRx = this.#clock.monotonic();
        this.#reader.commit(n);
        this.#dispatchBuffered();
      }
    } finally {
      timer.cancel();
      signal.removeEventListener("abort", onAbort);
    }
  }

  /** Closes the link, sending a GOODBYE first when `goodbye` and the stream still works. */
  close(reason: string, goodbye = true): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeReason = reason;
    const finish = () => {
      try {
        this.#conn.close();
      } catch { /* already closed */ }
    };
    if (goodbye && !this.#queue.inFlight) {
      const body = encoder.encode(JSON.stringify({ reason }));
      const out = new Uint8Array(HEADER_LEN + body.length);
      writeHeader(out, 0, MessageType.GOODBYE, body.length);
      out.set(body, HEADER_LEN);
      // Best effort, bounded: a peer that does not read gets closed anyway.
      const t = this.#clock.after(200, finish);
      this.#conn.write(out).catch(() => {}).finally(() => {
        t.cancel();
        finish();
      });
    } else {
      finish();
    }
    this.#queue.clear();
    this.#handlers.onClose?.(reason, this);
  }

  #dispatchBuffered(): void {
    try {
      for (let m = this.#reader.next(); m !== null && !this.#closed; m = this.#reader.next()) {
        switch (m.type) {
          case MessageType.FRAME:
            this.#rx.frames++;
            this.#rx.bytes += m.body.length - VNET_HDR_LEN;
            this.#handlers.onFrame(m.body, this);
            break;
          case MessageType.CONTROL:
            this.#handlers.onControl?.(JSON.parse(decoder.decode(m.body)), this);
            break;
          case MessageType.PING:
            if (this.#queue.pushMessage(MessageType.PONG, m.body)) this.#scheduleFlush();
            break;
          case MessageType.PONG:
            if (m.body.length === 8) {
              const sent = new DataView(m.body.buffer, m.body.byteOffset, 8).getFloat64(0);
              const rtt = this.#clock.monotonic() - sent;
              if (rtt >= 0 && rtt < 3_600_000) this.#rttMs = rtt;
            }
            break;
          case MessageType.GOODBYE: {
            let reason = "no reason given";
            try {
              const g = JSON.parse(decoder.decode(m.body));
              if (typeof g?.reason === "string") reason = g.reason.slice(0, 200);
            } catch { /* keep the default */ }
            this.close(`peer said goodbye: ${reason}`, false);
            break;
          }
          default:
            throw new ProtocolError(
              `Cannot accept message type 0x${m.type.toString(16)} on an established link`,
            );
        }
      }
    } catch (e) {
      const what = e instanceof ProtocolError || e instanceof SyntaxError
        ? (e as Error).message
        : `internal error: ${(e as Error).stack ?? e}`;
      this.#log.warn("Closing link {link} to {peer}: {what}", {
        link: this.name,
        peer: this.peer,
        what,
      });
      this.close(`protocol error: ${(e as Error).message}`);
    }
  }

  #sendJson(type: number, message: unknown): boolean {
    if (this.#closed) return false;
    const ok = this.#queue.pushMessage(type, encoder.encode(JSON.stringify(message)));
    if (ok) this.#scheduleFlush();
    return ok;
  }

  #keepalive(): void {
    if (this.#closed) return;
    const now = this.#clock.monotonic();
    if (now - this.#lastRx > this.#opts.deadAfterMs) {
      this.#log.warn("Closing link {link} to {peer}: nothing received for {ms} ms", {
        link: this.name,
        peer: this.peer,
        ms: Math.round(now - this.#lastRx),
      });
      this.close("keepalive timeout: peer silent", false);
      return;
    }
    if (
      now - this.#lastTx >= this.#opts.keepaliveMs || now - this.#lastRx >= this.#opts.keepaliveMs
    ) {
      this.#pingView.setFloat64(0, now);
      if (this.#queue.pushMessage(MessageType.PING, this.#pingBody)) this.#scheduleFlush();
    }
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled || this.#queue.inFlight) return;
    this.#flushScheduled = true;
    // A microtask runs after the caller's synchronous batch: every frame of the batch
    // leaves in the same write.
    queueMicrotask(() => this.#flush());
  }

  async #flush(): Promise<void> {
    this.#flushScheduled = false;
    for (let batch = this.#queue.take(); batch !== null; batch = this.#queue.take()) {
      try {
        let off = 0;
        while (off < batch.length) off += await this.#conn.write(batch.subarray(off));
        this.#lastTx = this.#clock.monotonic();
      } catch (e) {
        this.#queue.release();
        this.close(`write failed: ${(e as Error).message}`, false);
        return;
      }
      this.#queue.release();
      if (this.#closed) return;
    }
  }
}
