/**
 * Keepalive of a star link on a hand-driven clock: the host pings, the proxy's end answers;
 * an idle link pings once per idle interval; traffic wakes it; silence is judged by when the
 * pinging end said it would ping next; and a late tick (a stalled event loop) judges nothing.
 */
import { assert, assertEquals } from "../../support/assert.ts";
import { ManualClock } from "../../../agent/manual_clock.ts";
import { Link, type LinkOptions } from "../../../agent/link/link.ts";
import type { Conn } from "../../../agent/link/transport.ts";
import { DEAF_MIN_LINKS, Ticker } from "../../../agent/link/ticker.ts";
import { PingWriter } from "../../../agent/link/ping.ts";
import {
  encodeMessage,
  HEADER_LEN,
  MessageType,
  PREAMBLE_LEN,
  StreamReader,
  writePreamble,
} from "../../../agent/link/wire.ts";
import type { Clock } from "../../../agent/clock.ts";
import { packet } from "../../support/frames.ts";

/** One direction of a pipe: what was written, for the other end to read. */
class Direction {
  chunks: Uint8Array[] = [];
  wake: (() => void) | null = null;
  closed = false;
  /** Messages by type that crossed, for the test to count. */
  readonly types = new Map<number, number>();
  /** While true, bytes are lost (a dead network or a frozen peer). */
  blackhole = false;

  push(p: Uint8Array): void {
    if (this.blackhole) return;
    for (let at = 0; at + HEADER_LEN <= p.length;) {
      const len = (p[at + 1] << 16) | (p[at + 2] << 8) | p[at + 3];
      this.types.set(p[at], (this.types.get(p[at]) ?? 0) + 1);
      at += HEADER_LEN + len;
    }
    this.chunks.push(p.slice());
    const w = this.wake;
    this.wake = null;
    w?.();
  }
}

/** One end of the pipe. */
class End implements Conn {
  /** What the kernel would say it holds unread for this end (a test sets it). */
  unread = -1;

  constructor(readonly inbox: Direction, readonly outbox: Direction) {}

  unreadBytes(): number {
    return this.unread;
  }

  async read(p: Uint8Array): Promise<number | null> {
    while (this.inbox.chunks.length === 0) {
      if (this.inbox.closed) return null;
      await new Promise<void>((r) => this.inbox.wake = r);
    }
    const c = this.inbox.chunks[0];
    const n = Math.min(c.length, p.length);
    p.set(c.subarray(0, n));
    if (n === c.length) this.inbox.chunks.shift();
    else this.inbox.chunks[0] = c.subarray(n);
    return n;
  }

  write(p: Uint8Array): Promise<number> {
    if (this.outbox.closed) return Promise.reject(new Error("closed"));
    this.outbox.push(p);
    return Promise.resolve(p.length);
  }

  close(): void {
    for (const d of [this.inbox, this.outbox]) {
      d.closed = true;
      const w = d.wake;
      d.wake = null;
      w?.();
    }
  }
}

/** A reader past the peer's preamble, as a handshake leaves it. */
function reader(): StreamReader {
  const r = new StreamReader(undefined, { preAuthBodyBytes: 64 * 1024 });
  const s = r.space();
  writePreamble(s, 0);
  r.commit(PREAMBLE_LEN);
  r.next();
  return r;
}

const OPTIONS = { queueBytes: 1 << 20, keepaliveMs: 1000, deadAfterMs: 3000 };

/** A proxy end (kind host) and a host end (kind uplink) joined by a pipe, both running. */
function starLink(clock: Clock, options: Partial<LinkOptions> = {}) {
  const toHost = new Direction();
  const toProxy = new Direction();
  const opts = { ...OPTIONS, keepaliveIdleMs: 10_000, clock, ...options };
  const closed: string[] = [];
  const onClose = (why: string, l: Link) => closed.push(`${l.name}: ${why}`);
  const proxyConn = new End(toProxy, toHost);
  const proxyEnd = new Link(
    { name: "host:h1", kind: "host", peer: "h1", conn: proxyConn, reader: reader() },
    { onFrame: () => {}, onClose },
    opts,
  );
  const hostEnd = new Link(
    {
      name: "proxy",
      kind: "uplink",
      peer: "proxy",
      conn: new End(toHost, toProxy),
      reader: reader(),
    },
    { onFrame: () => {}, onClose },
    opts,
  );
  const stop = new AbortController();
  const runs = [proxyEnd.run(stop.signal), hostEnd.run(stop.signal)];
  return {
    proxyEnd,
    proxyConn,
    hostEnd,
    toHost,
    toProxy,
    closed,
    stop: async () => {
      stop.abort();
      await Promise.all(runs);
    },
  };
}

Deno.test("keepalive: an idle star link costs a ping per idle interval, from the host alone", async () => {
  const clock = new ManualClock();
  const l = starLink(clock);
  try {
    await clock.advance(11_000);
    assert(l.hostEnd.idle && l.proxyEnd.idle, "idle after keepalive-idle without traffic");
    const before = l.toProxy.types.get(MessageType.PING) ?? 0;
    await clock.advance(60_000);
    const pings = (l.toProxy.types.get(MessageType.PING) ?? 0) - before;
    assert(pings >= 5 && pings <= 7, `one ping per 10 s while idle, got ${pings} in 60 s`);
    assertEquals(l.toHost.types.get(MessageType.PING) ?? 0, 0, "the proxy's end never pings");
    assertEquals(l.toHost.types.get(MessageType.PONG), l.toProxy.types.get(MessageType.PING));
    assertEquals(l.closed, []);
    assert(l.proxyEnd.stats().rttMs !== null, "the proxy learns the round trip from the pings");
  } finally {
    await l.stop();
  }
});

Deno.test("keepalive: traffic wakes an idle link, and a dead peer is found within dead-after", async () => {
  const clock = new ManualClock();
  const l = starLink(clock);
  try {
    await clock.advance(15_000);
    assert(l.proxyEnd.idle);
    // A frame to a live host: it wakes, says so at once, and the link stays.
    l.proxyEnd.send(packet(0x020000000002, 0x020000000001));
    await clock.advance(500);
    assert(!l.hostEnd.idle && !l.proxyEnd.idle, "awake on both ends");
    await clock.advance(20_000);
    assertEquals(l.closed, []);
    // The host freezes (its bytes are lost). Idle, the proxy would wait 10 s + 3 s; a frame
    // sent to it wakes the link, and dead-after counts from then.
    await clock.advance(2_000);
    l.toHost.blackhole = l.toProxy.blackhole = true;
    l.proxyEnd.send(packet(0x020000000002, 0x020000000001));
    await clock.advance(3_000);
    assertEquals(l.proxyEnd.closed, false, "within dead-after of the wake");
    await clock.advance(600);
    assertEquals(l.proxyEnd.closed, true, "dead-after passed with nothing heard");
    assertEquals(l.proxyEnd.closeReason, "keepalive timeout: peer silent");
  } finally {
    await l.stop();
  }
});

Deno.test("keepalive: a peer whose bytes wait unread here is not silent; once read, it is", async () => {
  const clock = new ManualClock();
  const l = starLink(clock, { keepaliveIdleMs: undefined });
  try {
    await clock.advance(2_000);
    // The host's bytes stop arriving here, as when this end reads late, but the kernel says
    // it holds some: the proxy's end is behind, and keeps the link.
    // (Frames keep going to the host, so that its end hears the proxy and stays.)
    l.toProxy.blackhole = true;
    l.proxyConn.unread = 120;
    for (let s = 0; s < 6; s++) {
      l.proxyEnd.send(packet(0x020000000002, 0x020000000001));
      await clock.advance(1_000);
    }
    assertEquals(l.proxyEnd.closed, false, "unread bytes are not silence");
    assert(l.proxyEnd.behindWhenSilent >= 2, `counted: ${l.proxyEnd.behindWhenSilent}`);
    // Nothing waits any more, and still nothing arrives: now the peer is silent.
    l.proxyConn.unread = 0;
    l.proxyEnd.send(packet(0x020000000002, 0x020000000001));
    await clock.advance(1_100);
    assertEquals(l.proxyEnd.closed, true);
    assertEquals(l.proxyEnd.closeReason, "keepalive timeout: peer silent");
  } finally {
    await l.stop();
  }
});

Deno.test("keepalive: an idle peer that falls silent is closed after keepalive-idle + dead-after", async () => {
  const clock = new ManualClock();
  const l = starLink(clock);
  try {
    await clock.advance(12_000);
    l.toHost.blackhole = l.toProxy.blackhole = true;
    await clock.advance(10_000);
    assertEquals(l.proxyEnd.closed, false, "the next idle ping is not due yet");
    await clock.advance(4_000);
    assertEquals(l.proxyEnd.closed, true);
  } finally {
    await l.stop();
  }
});

Deno.test("keepalive: without keepalive-idle a link never idles, and both kinds of end behave as before", async () => {
  const clock = new ManualClock();
  const l = starLink(clock, { keepaliveIdleMs: undefined });
  try {
    await clock.advance(30_000);
    assert(!l.hostEnd.idle && !l.proxyEnd.idle);
    const pings = l.toProxy.types.get(MessageType.PING) ?? 0;
    assert(pings >= 25, `a ping a second, got ${pings}`);
    assertEquals(l.closed, []);
  } finally {
    await l.stop();
  }
});

Deno.test("ticker: a tick that comes late says the loop stalled; one timer for many checks", () => {
  let now = 0;
  let fire: () => void = () => {};
  let armed = 0;
  const clock: Clock = {
    now: () => now,
    monotonic: () => now,
    after: () => ({ cancel() {} }),
    every: (_ms, fn) => {
      armed++;
      fire = fn;
      return { cancel: () => armed-- };
    },
    sleep: () => Promise.resolve(),
  };
  const seen: boolean[] = [];
  const stopA = Ticker.of(clock, 250).add((_now, stalled) => seen.push(stalled));
  const stopB = Ticker.of(clock, 250).add(() => {});
  assertEquals(armed, 1, "one timer for both");
  now = 250;
  fire();
  now = 2_500; // the loop was held up for two seconds
  fire();
  now = 2_750;
  fire();
  assertEquals(seen, [false, true, false]);
  assertEquals(Ticker.of(clock, 250).stalls, 1);
  stopA();
  stopB();
  assertEquals(armed, 0, "cancelled with the last check");
});

/** `n` proxy ends of star links whose hosts send nothing; `talker`: one more whose host pings. */
function proxyEnds(clock: Clock, n: number) {
  const closed: string[] = [];
  const ends = Array.from({ length: n + 1 }, (_, i) => {
    const inbox = new Direction();
    const conn = new End(inbox, new Direction());
    const link = new Link(
      { name: `host:h${i}`, kind: "host", peer: `h${i}`, conn, reader: reader() },
      { onFrame: () => {}, onClose: (why, l) => closed.push(`${l.name}: ${why}`) },
      { ...OPTIONS, keepaliveIdleMs: 10_000, clock },
    );
    return { link, inbox };
  });
  const stop = new AbortController();
  const runs = ends.map((e) => e.link.run(stop.signal));
  const ping = new PingWriter();
  return {
    silent: ends.slice(0, n).map((e) => e.link),
    closed,
    /** The last host pings (busy: its next within a second). */
    talk: () => ends[n].inbox.push(encodeMessage(MessageType.PING, ping.write(0, null, 1000))),
    stop: async () => {
      stop.abort();
      await Promise.all(runs);
    },
  };
}

Deno.test("keepalive: when this end heard nobody at all, it is behind: silence waits up to twice the limit", async () => {
  const clock = new ManualClock();
  const p = proxyEnds(clock, DEAF_MIN_LINKS);
  try {
    // Nobody is heard (this end stopped reading): past dead-after (3 s), nobody is closed.
    await clock.advance(4_000);
    assertEquals(p.closed, []);
    assert(p.silent.every((l) => l.behindWhenSilent > 0), "counted as behind, not silent");
    // Twice the limit: silence is believed even so (a network that went away for everyone).
    await clock.advance(2_500);
    assertEquals(p.silent.filter((l) => l.closed).length, DEAF_MIN_LINKS);
    assertEquals(p.silent[0].closeReason, "keepalive timeout: peer silent");
  } finally {
    await p.stop();
  }
});

Deno.test("keepalive: a silent peer among peers that are heard is closed at its limit", async () => {
  const clock = new ManualClock();
  const p = proxyEnds(clock, DEAF_MIN_LINKS);
  try {
    for (let t = 0; t < 3_500; t += 250) {
      p.talk();
      await clock.advance(250);
    }
    assertEquals(p.silent.filter((l) => l.closed).length, DEAF_MIN_LINKS);
    assert(!p.closed.some((c) => c.startsWith(`host:h${DEAF_MIN_LINKS}:`)), "the talker stays");
  } finally {
    await p.stop();
  }
});
