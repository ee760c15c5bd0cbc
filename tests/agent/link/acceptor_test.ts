/**
 * The proxy's front door against a fake listener: limits overall and per source, slots given
 * back when the handshake settles (not when the host leaves), a waiting room that paces a
 * storm of sources, and a failing accept (EMFILE) counted and survived instead of ending the
 * loop.
 */
import { assert, assertEquals } from "../../support/assert.ts";
import { Acceptor, MAX_WAITING_PER_SLOT } from "../../../agent/link/acceptor.ts";
import { ManualClock } from "../../../agent/manual_clock.ts";

class FakeConn {
  closed = false;
  constructor(readonly source: string) {}
  close() {
    this.closed = true;
  }
}

/** Hands out the scripted connections (or throws the scripted errors), then waits forever. */
class FakeListener {
  readonly #script: (FakeConn | Error)[];
  constructor(script: (FakeConn | Error)[]) {
    this.#script = script;
  }
  accept(): Promise<FakeConn> {
    const next = this.#script.shift();
    if (next === undefined) return new Promise(() => {});
    return next instanceof Error ? Promise.reject(next) : Promise.resolve(next);
  }
}

/** Runs an acceptor over scripted sources; the served hosts never finish their handshakes. */
async function script(
  limits: { maxHandshakes: number; maxHandshakesPerSource: number; handshakeTimeout?: number },
  sources: string[],
  clock?: ManualClock,
) {
  const a = new Acceptor(limits);
  const conns = sources.map((s) => new FakeConn(s));
  const served: FakeConn[] = [];
  const finish: (() => void)[] = [];
  const stop = new AbortController();
  a.run(new FakeListener([...conns]), {
    sourceOf: (c) => c.source,
    serve: (c, done) => {
      served.push(c);
      finish.push(done);
      return new Promise(() => {}); // the host stays connected
    },
    onAcceptError: () => {},
    onServeError: () => {},
    clock,
  }, stop.signal);
  // The script is done once the last connection was served, turned away or set waiting.
  const last = conns.at(-1)!;
  const until = Date.now() + 5000;
  const handled = () => served.length + conns.filter((c) => c.closed).length + a.waiting;
  while (!last.closed && !served.includes(last) && Date.now() < until) {
    if (handled() >= conns.length) break;
    if (a.paused > 0 && a.waiting >= a.roomSize) break; // the rest stay in the "backlog"
    await new Promise((r) => setTimeout(r, 1));
  }
  return { a, conns, served, finish, stop };
}

Deno.test("acceptor: limits per source and overall; a settled handshake frees its slot", async () => {
  const { a, conns, served, finish, stop } = await script(
    { maxHandshakes: 3, maxHandshakesPerSource: 2 },
    ["a", "a", "a", "b", "b"],
  );
  assertEquals(served.map((c) => c.source), ["a", "a", "b"]);
  assert(conns[2].closed, "the third from a closed");
  assert(!conns[4].closed, "b's second waits: every source holds at most one more than b");
  assertEquals(a.waiting, 1);
  assertEquals(a.refusals, { "too many handshakes from one source": 1 });
  assertEquals(a.pending, 3);
  finish[0]();
  assertEquals(served.at(-1), conns[4], "a freed slot goes to the one waiting");
  for (const done of finish) done();
  finish[0](); // a second call (or the serve promise settling later) frees nothing twice
  assertEquals(a.pending, 0, "admitted hosts hold no handshake slot");
  stop.abort();
});

Deno.test("acceptor: when full, the source holding the most handshakes makes room for a new one", async () => {
  // x and y hold every slot (as attackers holding silent connections would); z and w still get
  // in, each at the cost of the oldest handshake of whoever holds the most; v finds every
  // source at one slot and waits for one.
  const { a, conns, served, stop } = await script(
    { maxHandshakes: 4, maxHandshakesPerSource: 2 },
    ["x", "x", "y", "y", "z", "w", "v"],
  );
  assertEquals(served.map((c) => c.source), ["x", "x", "y", "y", "z", "w"]);
  assert(conns[0].closed && conns[2].closed, "the oldest of x and of y were evicted");
  assert(!conns[1].closed && !conns[3].closed, "their newer ones stay");
  assert(!conns[6].closed && a.waiting === 1, "v waits: nobody holds more than one slot more");
  assertEquals(a.refusals, { "evicted for another source": 2 });
  assertEquals(a.pending, 4);
  stop.abort();
  assert(conns[6].closed, "whoever waits is closed when the listener stops");
});

Deno.test("acceptor: a failing accept is counted and the loop goes on", async () => {
  const a = new Acceptor({ maxHandshakes: 10, maxHandshakesPerSource: 10 });
  const errors: string[] = [];
  const served: string[] = [];
  const stop = new AbortController();
  const emfile = new Error("Too many open files (os error 24)");
  a.run(new FakeListener([emfile, new FakeConn("x")]), {
    sourceOf: (c) => c.source,
    serve: (c, done) => {
      served.push(c.source);
      done();
      return Promise.resolve();
    },
    onAcceptError: (e) => errors.push(e.message),
    onServeError: () => {},
  }, stop.signal);
  const until = Date.now() + 5000;
  while (served.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  assertEquals(served, ["x"], "the connection after the failure was served");
  assertEquals(errors, [emfile.message]);
  assertEquals(a.refusals["accept failed"], 1);
  stop.abort();
});

Deno.test("acceptor: a storm of sources waits its turn, in order, bounded, and not for ever", async () => {
  const clock = new ManualClock();
  const limits = { maxHandshakes: 2, maxHandshakesPerSource: 1, handshakeTimeout: 1000 };
  const room = MAX_WAITING_PER_SLOT * limits.maxHandshakes;
  // A burst: two in flight, the room full, and the last two not even accepted: they stay in
  // the listener's backlog (an accepted connection has cost its TLS handshake already).
  const sources = Array.from({ length: 2 + room + 2 }, (_, i) => `10.0.${i >> 8}.${i & 255}`);
  const { a, conns, served, finish, stop } = await script(limits, sources, clock);
  assertEquals(served.length, 2);
  assertEquals(a.waiting, room);
  assertEquals(a.refusals, {}, "nobody refused at the door");
  assertEquals(a.paused, 1);
  // Each handshake that settles lets the oldest waiting one in, and the room it frees lets
  // the listener accept again.
  finish[0]();
  finish[1]();
  await clock.advance(0);
  assertEquals(served.map((c) => c.source), sources.slice(0, 4));
  assertEquals(a.waiting, room, "the last two were accepted into the freed room");
  // The rest have waited half the handshake timeout: they are closed, to come back later.
  await clock.advance(limits.handshakeTimeout / 2);
  assertEquals(a.waiting, 0);
  assertEquals(a.refusals["waited too long"], room);
  assert(conns.slice(4).every((c) => c.closed));
  stop.abort();
});
