/**
 * Reachability is checked, not assumed: an address is handed to peers only where the proxy
 * reached the host with its own key, and an unreachable host says why.
 */
import { assert, assertEquals } from "../support/assert.ts";
import {
  listenCandidates,
  LISTENING_GAP_MS,
  MAX_CHECKS,
  Reachability,
  RECHECK_MS,
} from "../../proxy/reachability.ts";
import { ManualClock } from "../../agent/manual_clock.ts";
import { type Address, formatAddress } from "../../agent/config/types.ts";
import { DialTimeout } from "../../agent/link/transport.ts";

/** A prober that answers at the listed addresses and times out elsewhere. */
function prober(answers: string[]) {
  const tried: string[] = [];
  return {
    tried,
    probe: (a: Address) => {
      tried.push(formatAddress(a));
      return answers.includes(formatAddress(a))
        ? Promise.resolve()
        : Promise.reject(new DialTimeout("no answer"));
    },
  };
}

Deno.test("reachability: candidates are the advertised address, an explicit one, then joined-from", () => {
  const c = (address: string, advertise: string | null) =>
    listenCandidates({ address, advertise }, "10.0.0.5").candidates.map((x) =>
      `${x.address} ${x.source}`
    );
  assertEquals(c(":7810", null), ["10.0.0.5:7810 joined from"]);
  assertEquals(c("[::]:7810", "203.0.113.9:17810"), [
    "203.0.113.9:17810 advertised",
    "10.0.0.5:7810 joined from",
  ]);
  assertEquals(c("192.0.2.99:22", null), ["192.0.2.99:22 listen", "10.0.0.5:22 joined from"]);
  assertEquals(
    listenCandidates({ address: ":1", advertise: "[2001:db8::1]:7" }, "2001:db8::2")
      .candidates.map((x) => x.address),
    ["[2001:db8::1]:7", "[2001:db8::2]:1"],
  );
  assert(listenCandidates({ address: "nonsense", advertise: null }, "10.0.0.5").problem !== null);
});

Deno.test("reachability: an advertised address that does not answer with the host's key is never used", async () => {
  const p = prober(["10.0.0.5:7810"]);
  const reach = new Reachability({ probe: p.probe, clock: new ManualClock() });
  reach.joined("h1", { hostname: "10.0.0.5", port: 40000 });
  await reach.listening("h1", { address: ":7810", advertise: "192.0.2.99:22" }, "SHA256:k");
  assertEquals(p.tried.sort(), ["10.0.0.5:7810", "192.0.2.99:22"]);
  assertEquals(reach.get("h1")?.state, "reachable");
  assertEquals(reach.get("h1")?.listen, "10.0.0.5:7810");
});

Deno.test("reachability: a verified port forward is preferred; a host reached nowhere says why", async () => {
  const clock = new ManualClock();
  const p = prober(["198.51.100.7:7000"]);
  const reach = new Reachability({ probe: p.probe, clock });
  reach.joined("h1", { hostname: "10.0.0.5", port: 40000 });
  await reach.listening("h1", { address: ":7810", advertise: "198.51.100.7:7000" }, "SHA256:k");
  assertEquals(reach.get("h1")?.listen, "198.51.100.7:7000");

  reach.joined("h2", { hostname: "10.0.0.6", port: 40001 });
  await reach.listening("h2", { address: ":7811", advertise: null }, "SHA256:k2");
  const h2 = reach.get("h2")!;
  assertEquals(h2.state, "unreachable");
  assertEquals(h2.listen, null);
  assertEquals(
    h2.reason,
    "the proxy could not reach h2 at 10.0.0.6:7811 (joined from): no answer (timed out)",
  );
  // Looked at again once its reports show it is still there, a minute later.
  const before = p.tried.length;
  reach.recheckIfDue("h2", clock.now() + 1000);
  assertEquals(p.tried.length, before, "not yet");
  reach.recheckIfDue("h2", clock.now() + RECHECK_MS);
  assertEquals(p.tried.length, before + 1);
  reach.forget("h2");
  assertEquals(reach.get("h2"), undefined);
});

Deno.test("reachability: at most MAX_CHECKS hosts are checked at once; a peer's recheck goes first", async () => {
  const inFlight: { host: string; answer: () => void }[] = [];
  let most = 0;
  const order: string[] = [];
  const reach = new Reachability({
    clock: new ManualClock(),
    probe: (a) =>
      new Promise<void>((resolve) => {
        const host = `h${a.port - 7000}`;
        order.push(host);
        inFlight.push({ host, answer: resolve });
        most = Math.max(most, inFlight.length);
      }),
  });
  const n = MAX_CHECKS + 5;
  const checks: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    reach.joined(`h${i}`, { hostname: "10.0.0.5", port: 40000 + i });
    checks.push(reach.listening(`h${i}`, { address: `:${7000 + i}`, advertise: null }, "SHA256:k"));
  }
  await Promise.resolve();
  assertEquals(inFlight.length, MAX_CHECKS, "the rest wait their turn");
  assertEquals(reach.queued, 5);
  assertEquals(reach.get(`h${n - 1}`)?.state, "checking", "waiting for its turn");
  // A peer could not dial the last host: it goes before the other waiting ones, and asking
  // twice keeps one place.
  const again = reach.check(`h${n - 1}`, true);
  assert(reach.check(`h${n - 1}`) === again);
  assertEquals(reach.queued, 5);
  while (inFlight.length) {
    inFlight.shift()!.answer();
    await new Promise((r) => setTimeout(r, 0));
  }
  await Promise.all([...checks, again]);
  assertEquals(most, MAX_CHECKS);
  assertEquals(order.length, n, "each host checked once");
  assertEquals(order[MAX_CHECKS], `h${n - 1}`, "the recheck first");
  for (let i = 0; i < n; i++) assertEquals(reach.get(`h${i}`)?.state, "reachable");
  assertEquals(reach.queued, 0);
});

Deno.test("reachability: a host's listening is acted on once per gap on a link; a new link may say it at once", async () => {
  const clock = new ManualClock();
  const p = prober(["10.0.0.5:7810", "10.0.0.5:7811"]);
  const reach = new Reachability({ clock, probe: p.probe });
  reach.joined("h1", { hostname: "10.0.0.5", port: 40000 });
  const said = (port: number) =>
    reach.listening("h1", { address: `:${port}`, advertise: null }, "SHA256:k");
  await said(7810);
  await said(7811); // again at once: each would be a dial by the proxy
  assertEquals(p.tried, ["10.0.0.5:7810"]);
  assertEquals(reach.refused["listening too often"], 1);
  assertEquals(reach.get("h1")?.listen, "10.0.0.5:7810", "the first word stands");
  await clock.advance(LISTENING_GAP_MS);
  await said(7811);
  assertEquals(reach.get("h1")?.listen, "10.0.0.5:7811", "after the gap it is heard");
  reach.joined("h1", { hostname: "10.0.0.5", port: 40001 }); // a new link
  await said(7810);
  assertEquals(p.tried, ["10.0.0.5:7810", "10.0.0.5:7811", "10.0.0.5:7810"]);
  assertEquals(reach.refused["listening too often"], 1);
});
