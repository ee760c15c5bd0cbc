/**
 * What a host says of its fast paths' RTTs: a new link at once, jitter never, a real change
 * at the next check, a stable path once a minute, everything again for a restarted proxy, and
 * never more than one message holds.
 */
import { assertEquals } from "../../support/assert.ts";
import { PathRttReport } from "../../../agent/traffic/path_rtt.ts";

Deno.test("path rtt: new links and real changes are said; jitter and silence are not", () => {
  const r = new PathRttReport({ minChangeMs: 1, changeFraction: 0.25, refreshMs: 60_000 });
  // Not measured yet (no PONG): nothing to say.
  assertEquals(r.check([["h2", null]], 0), null);
  assertEquals(r.check([["h2", 20], ["h3", 0.3]], 2000)?.paths, [["h2", 20], ["h3", 0.3]]);
  // A LAN path's jitter, a WAN path's few per cent: below both thresholds.
  assertEquals(r.check([["h2", 21], ["h3", 0.9]], 4000), null);
  // h2's path got slower: the smoothed value moves past 25% within a few checks.
  let said = null;
  let now = 4000;
  while (said === null && now < 20_000) said = r.check([["h2", 40], ["h3", 0.3]], now += 2000);
  assertEquals(said?.paths.map(([peer]) => peer), ["h2"]);
  const ms = said!.paths[0][1];
  assertEquals(ms > 25 && ms < 40, true, `smoothed, not the last ping: ${ms}`);
  // Nothing new for a minute: each path is said again, so the proxy knows it still holds.
  assertEquals(r.check([["h2", ms], ["h3", 0.3]], now + 2000), null);
  assertEquals(r.check([["h2", ms], ["h3", 0.3]], now + 60_000)?.paths.length, 2);
});

Deno.test("path rtt: a link that goes and comes back, and a re-joined proxy, hear it anew", () => {
  const r = new PathRttReport();
  assertEquals(r.check([["h2", 5]], 0)?.paths, [["h2", 5]]);
  assertEquals(r.check([], 2000), null, "h2's link is down: forgotten");
  assertEquals(r.check([["h2", 5]], 4000)?.paths, [["h2", 5]], "back: said at once");
  r.reset();
  assertEquals(r.check([["h2", 5]], 6000)?.paths, [["h2", 5]], "a new proxy knows nothing");
  assertEquals(r.check([["h2", 5]], 8000), null);
  // Bad numbers from a link are not passed on.
  assertEquals(r.check([["h3", NaN], ["h4", -1], ["h5", Infinity]], 10_000), null);
});

Deno.test("path rtt: one message holds at most maxEntries; the rest go at the next check", () => {
  const r = new PathRttReport({ maxEntries: 2 });
  const links = [["a", 1], ["b", 2], ["c", 3]] as const;
  assertEquals(r.check(links, 0)?.paths.map(([p]) => p), ["a", "b"]);
  assertEquals(r.check(links, 2000)?.paths.map(([p]) => p), ["c"]);
  assertEquals(r.check(links, 4000), null);
});
