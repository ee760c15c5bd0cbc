/**
 * The proxy's front door against a fake listener: limits overall and per source, slots given
 * back when the handshake settles (not when the host leaves), and a failing accept (EMFILE)
 * counted and survived instead of ending the loop.
 */
import { assert, assertEquals } from "../../support/assert.ts";
import { Acceptor } from "../../../agent/link/acceptor.ts";

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
  limits: { maxHandshakes: number; maxHandshakesPerSource: number },
  sources: string[],
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
  }, stop.signal);
  // The script is done once the last connection was either served or turned away.
  const last = conns.at(-1)!;
  const until = Date.now() + 5000;
  while (!last.closed && !served.includes(last) && Date.now() < until) {
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
  assert(conns[4].closed, "b's second: every source holds at most one more than b");
  assertEquals(a.refusals, {
    "too many handshakes from one source": 1,
    "too many handshakes": 1,
  });
  assertEquals(a.pending, 3);
  for (const done of finish) done();
  finish[0](); // a second call (or the serve promise settling later) frees nothing twice
  assertEquals(a.pending, 0, "admitted hosts hold no handshake slot");
  stop.abort();
});

Deno.test("acceptor: when full, the source holding the most handshakes makes room for a new one", async () => {
  // x and y hold every slot (as attackers holding silent connections would); z and w still get
  // in, each at the cost of the oldest handshake of whoever holds the most; v finds every
  // source at one slot and is refused.
  const { a, conns, served, stop } = await script(
    { maxHandshakes: 4, maxHandshakesPerSource: 2 },
    ["x", "x", "y", "y", "z", "w", "v"],
  );
  assertEquals(served.map((c) => c.source), ["x", "x", "y", "y", "z", "w"]);
  assert(conns[0].closed && conns[2].closed, "the oldest of x and of y were evicted");
  assert(!conns[1].closed && !conns[3].closed, "their newer ones stay");
  assert(conns[6].closed, "v refused: nobody holds more than one slot more");
  assertEquals(a.refusals, { "evicted for another source": 2, "too many handshakes": 1 });
  assertEquals(a.pending, 4);
  stop.abort();
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
