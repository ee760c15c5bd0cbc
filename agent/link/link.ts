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
 * Keepalive, checked for every link of a clock by one shared {@linkcode Ticker} and judged by
 * a pure core (keepalive.ts): links ping when quiet, idle links rarely, and on a star link only
 * the host pings, so ten thousand idle hosts cost the proxy one read and one write each per
 * idle interval. A peer whose bytes wait unread in the kernel (`Conn.unreadBytes`) is not
 * silent: then this end is behind, not the peer gone.
 *
 * @module
 */

import { onAbort } from "../abort_set.ts";
import type { Port, PortKind } from "../switch/switch.ts";
import { type Clock, systemClock } from "../clock.ts";
import { logger } from "../log.ts";
import { VNET_HDR_LEN } from "../packet/layout.ts";
import { SendQueue } from "./send_queue.ts";
import { Keepalive } from "./keepalive.ts";
import { Ticker } from "./ticker.ts";
import { encodeMessage, MessageType, ProtocolError, type StreamReader } from "./wire.ts";
import { PingWriter, readPing } from "./ping.ts";

export type { Conn } from "./transport.ts";
import type { Conn } from "./transport.ts";
import type { LinkHandlers, LinkOptions, LinkStats } from "./link_contract.ts";
export type { LinkHandlers, LinkOptions, LinkStats } from "./link_contract.ts";

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
  /** Largest gap between two receives since {@linkcode takeKeepaliveHealth} was last called. */
  #maxRxGap = 0;
  /** Largest keepalive round trip since then. */
  #maxRtt = 0;
  /** Control messages sent and received (frames are counted by the queue and `#rx`). */
  #controls = 0;
  /** When to ping and when the peer is silent (the proxy's end of a star link never pings). */
  readonly #keepalive: Keepalive;
  /** The shared ticker that checks this link (set by run). */
  #ticker: Ticker | null = null;
  #flushScheduled = false;
  #closed = false;
  #closeReason = "";
  /** Checks that found the peer silent while this end was behind (not closed). */
  #behindWhenSilent = 0;
  /**
   * This end's monotonic clock when sent, its last round trip (-1: none) and within how many
   * ms its next PING will come; the peer echoes it.
   */
  readonly #ping = new PingWriter();
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
    this.#keepalive = new Keepalive(init.kind !== "host", options, this.#lastRx);
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

  /**
   * Times this link looked silent for longer than its limit while this end was behind (the
   * kernel held bytes from the peer not read yet, or no link at all was heard for a while),
   * and the link was kept.
   */
  get behindWhenSilent(): number {
    return this.#behindWhenSilent;
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

  /** Frame bytes sent so far (what stats() calls frameBytes, without a snapshot). */
  get txBytes(): number {
    return this.#queue.stats.frameBytes;
  }

  /** Frame bytes received so far. */
  get rxBytes(): number {
    return this.#rx.bytes;
  }

  /** The last keepalive round trip in ms, or null before the first. */
  get rttMs(): number | null {
    return this.#rttMs;
  }

  /** True while the link carries nothing but keepalives (see the module doc). */
  get idle(): boolean {
    return this.#keepalive.idle;
  }

  /**
   * Since the previous call: the longest the peer was silent (ms between two receives, or
   * since the last one) and the slowest keepalive round trip; how close the link came to
   * missing keepalives. Starts afresh.
   */
  takeKeepaliveHealth(): { maxSilenceMs: number; maxRttMs: number } {
    const out = {
      maxSilenceMs: Math.max(this.#maxRxGap, this.#clock.monotonic() - this.#lastRx),
      maxRttMs: this.#maxRtt,
    };
    this.#maxRxGap = this.#maxRtt = 0;
    return out;
  }

  /** Queues a packet; the write happens after the current batch (see module doc). */
  send(packet: Uint8Array): boolean {
    if (this.#closed || !this.#queue.pushFrame(packet)) return false;
    this.#scheduleFlush();
    return true;
  }

  /** Queues a control message (JSON); false if the link is closed or the queue is full. */
  sendControl(message: unknown): boolean {
    this.#controls++;
    return this.#sendJson(MessageType.CONTROL, message);
  }

  /**
   * Pumps received messages until the link closes or `signal` aborts; never rejects.
   * Also runs the keepalive.
   */
  async run(signal: AbortSignal): Promise<void> {
    const leave = onAbort(signal, () => this.close("shutting down"));
    // Checked often enough to ping within a quarter interval of being due.
    const period = Math.max(50, Math.min(250, this.#opts.keepaliveMs / 2));
    const ticker = Ticker.of(this.#clock, period);
    this.#ticker = ticker;
    const stopChecks = ticker.add((now, stalled) => this.#checkKeepalive(now, stalled));
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
        const now = this.#clock.monotonic();
        if (now - this.#lastRx > this.#maxRxGap) this.#maxRxGap = now - this.#lastRx;
        this.#lastRx = ticker.heardAt = now;
        this.#reader.commit(n);
        this.#dispatchBuffered();
      }
    } finally {
      stopChecks();
      leave();
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
      const out = encodeMessage(MessageType.GOODBYE, encoder.encode(JSON.stringify({ reason })));
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
            this.#controls++;
            this.#handlers.onControl?.(JSON.parse(decoder.decode(m.body)), this);
            break;
          case MessageType.PING:
            this.#heardPing(m.body);
            if (this.#queue.pushMessage(MessageType.PONG, m.body)) this.#scheduleFlush();
            break;
          case MessageType.PONG:
            if (m.body.length >= 8) {
              const sent = new DataView(m.body.buffer, m.body.byteOffset, 8).getFloat64(0);
              const rtt = this.#clock.monotonic() - sent;
              if (rtt >= 0 && rtt < 3_600_000) {
                this.#rttMs = rtt;
                if (rtt > this.#maxRtt) this.#maxRtt = rtt;
              }
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

  /**
   * What a PING says beyond its clock (a peer of an older build sends only the clock): the
   * pinger's last round trip, and within how long its next PING comes (keepalive.ts).
   */
  #heardPing(body: Uint8Array): void {
    const ping = readPing(body);
    if (ping === null) return;
    if (ping.rttMs !== null) this.#rttMs = ping.rttMs;
    this.#keepalive.heardPing(ping.nextMs);
  }

  /**
   * True when this end, not the peer, looks silent: no link of the ticker was heard for half
   * this link's limit, and the silence is still under twice the limit.
   */
  #deaf(now: number, silentMs: number, limitMs: number): boolean {
    const heardNobody = this.#ticker?.heardNobodyFor(now) ?? 0;
    return heardNobody >= limitMs / 2 && silentMs <= 2 * limitMs;
  }

  /**
   * One keepalive check at monotonic `now`; on a `stalled` tick silence is not judged (see
   * ticker.ts). Counters, not a clock read per frame: traffic since the last check makes the
   * link busy.
   */
  #checkKeepalive(now: number, stalled: boolean): void {
    if (this.#closed) return;
    const traffic = this.#rx.frames + this.#queue.stats.frames + this.#controls;
    const v = this.#keepalive.check(now, traffic, this.#lastRx, this.#lastTx);
    if (v.silentMs !== null && !stalled) {
      if ((this.#conn.unreadBytes?.() ?? -1) > 0) {
        // The peer did speak: its bytes wait in the kernel because this end is behind. A
        // saturated proxy read 8,327 of 10,000 links late while its ticker fired on time,
        // and closed them as silent.
        this.#behindWhenSilent++;
      } else if (this.#deaf(now, v.silentMs, v.limitMs)) {
        // Nobody at all was heard for a while: this end stopped reading (a proxy closed
        // 8,520 hosts at one tick, established ones too, none showing unread bytes).
        // Judged again later, up to twice the limit.
        this.#behindWhenSilent++;
      } else {
        this.#log.warn("Closing link {link} to {peer}: nothing received for {ms} ms", {
          link: this.name,
          peer: this.peer,
          ms: Math.round(now - this.#lastRx),
        });
        this.close("keepalive timeout: peer silent", false);
        return;
      }
    }
    if (v.pingEvery === null) return;
    const body = this.#ping.write(now, this.#rttMs, v.pingEvery);
    if (this.#queue.pushMessage(MessageType.PING, body)) this.#scheduleFlush();
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
