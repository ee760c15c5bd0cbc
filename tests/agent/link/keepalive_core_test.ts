/**
 * The keepalive's pure core against a reference that judges every check in full: the quick
 * return before `quietUntil` must never change a verdict. Plus the core's rules, each on its
 * own: pings while busy, idle after keepalive-idle, woken by traffic, silence by the
 * pinger's word.
 */
import { assert, assertEquals } from "../../support/assert.ts";
import { Keepalive, type KeepaliveTimes } from "../../../agent/link/keepalive.ts";

const TIMES: KeepaliveTimes = { keepaliveMs: 1000, deadAfterMs: 3000, keepaliveIdleMs: 10_000 };

/**
 * The rules written plainly, judged in full at every check (no quick return): the reference
 * the core is held to.
 */
class Reference {
  traffic = 0;
  active: number;
  woke = -Infinity;
  idle = false;
  peerIdle: number | null = null;
  /** The silence limit of the last check. */
  limit = 0;

  constructor(readonly pings: boolean, readonly t: KeepaliveTimes, now: number) {
    this.active = now;
  }

  heard(next: number) {
    const idleMs = this.t.keepaliveIdleMs ?? this.t.keepaliveMs;
    this.peerIdle = next > this.t.keepaliveMs ? Math.min(next, idleMs) : null;
  }

  check(now: number, traffic: number, rx: number, tx: number) {
    const idleMs = this.t.keepaliveIdleMs ?? this.t.keepaliveMs;
    const wasIdle = this.idle;
    if (traffic !== this.traffic) {
      if (this.idle || this.peerIdle !== null) this.woke = now;
      [this.traffic, this.active, this.idle, this.peerIdle] = [traffic, now, false, null];
    } else if (this.pings && idleMs > this.t.keepaliveMs && now - this.active >= idleMs) {
      this.idle = true;
    }
    let quiet: number | null = this.peerIdle;
    if (this.pings) quiet = this.idle ? idleMs : null;
    const since = quiet === null ? Math.max(rx, this.woke) : rx;
    const limit = this.limit = (quiet ?? 0) + this.t.deadAfterMs;
    const silentMs = now - since > limit ? now - since : null;
    if (!this.pings) return { silentMs, pingEvery: null };
    const every = this.idle ? idleMs : this.t.keepaliveMs;
    const due = wasIdle !== this.idle || now - tx >= every || now - rx >= every;
    return { silentMs, pingEvery: due ? every : null };
  }
}

/** A seeded generator: the same run every time. */
function random(seed: number) {
  return () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
}

Deno.test("keepalive core: the quick return never changes a verdict (10,000 random steps)", () => {
  for (const pings of [true, false]) {
    const rnd = random(pings ? 7 : 11);
    const core = new Keepalive(pings, TIMES, 0);
    const ref = new Reference(pings, TIMES, 0);
    let [now, traffic, rx, tx, quick] = [0, 0, 0, 0, 0];
    for (let step = 0; step < 10_000; step++) {
      now += 250;
      const r = rnd();
      // Long quiet stretches, bursts of traffic, pings heard, and the peer going silent.
      if (r < 0.05) traffic++;
      if (r < 0.3 && rnd() < 0.7) rx = now;
      if (!pings && r > 0.97) {
        const next = rnd() < 0.5 ? 1000 : 10_000;
        core.heardPing(next);
        ref.heard(next);
        rx = now;
      }
      if (now < core.quietUntil) quick++;
      const got = core.check(now, traffic, rx, tx);
      const want = ref.check(now, traffic, rx, tx);
      const seen = { silentMs: got.silentMs, pingEvery: got.pingEvery };
      assertEquals(seen, want, `step ${step} at ${now} ms (pings: ${pings})`);
      if (got.silentMs !== null) assertEquals(got.limitMs, ref.limit, `limit at step ${step}`);
      if (got.pingEvery !== null) tx = now;
      if (got.silentMs !== null && rnd() < 0.5) rx = now; // the peer speaks again
    }
    assert(quick > 1000, `the quick return was taken (${quick} times)`);
  }
});

Deno.test("keepalive core: busy, then idle after keepalive-idle, then woken by traffic", () => {
  const k = new Keepalive(true, TIMES, 0);
  let tx = 0;
  const pingsUntil = (end: number, from: number, traffic: number) => {
    const sent: number[] = [];
    for (let now = from; now <= end; now += 250) {
      const v = k.check(now, traffic, now, tx); // the peer answers every time
      if (v.pingEvery !== null) sent.push(v.pingEvery), tx = now;
    }
    return sent;
  };
  const busy = pingsUntil(10_000, 250, 1);
  assert(busy.length >= 8 && busy.every((e) => e === 1000), `${busy}`);
  assertEquals(k.idle, false);
  const idle = pingsUntil(60_000, 10_250, 1);
  assert(k.idle, "idle after keepalive-idle without traffic");
  assertEquals(idle[0], 10_000, "going idle is told at once");
  assert(idle.length >= 5 && idle.length <= 7, `one ping per 10 s: ${idle}`);
  assertEquals(k.check(60_250, 2, 60_250, tx).pingEvery, 1000, "woken: told at once");
  assertEquals(k.idle, false);
});

Deno.test("keepalive core: the answering end judges silence by the pinger's word", () => {
  const k = new Keepalive(false, TIMES, 0);
  k.heardPing(10_000); // the pinger is idle: next PING within 10 s
  assertEquals(k.idle, true);
  assertEquals(k.check(12_900, 0, 0, 0).silentMs, null, "within 10 s + dead-after");
  assertEquals(k.check(13_100, 0, 0, 0).silentMs, 13_100);
  // It woke and said so: a second PING announcing 1 s; silence now counts from dead-after.
  const k2 = new Keepalive(false, TIMES, 0);
  k2.heardPing(10_000);
  assertEquals(k2.check(5_000, 0, 0, 0).silentMs, null);
  assert(k2.quietUntil > 5_000, "nothing to judge for a while");
  k2.heardPing(1000);
  assertEquals(k2.quietUntil, 0, "the pinger's new word is judged at the next check");
  assertEquals(k2.check(5_250, 0, 5_000, 0).silentMs, null);
  assertEquals(k2.check(8_250, 0, 5_000, 0).silentMs, 3_250);
  assertEquals(k2.check(8_250, 0, 5_000, 0).pingEvery, null, "the answering end never pings");
});
