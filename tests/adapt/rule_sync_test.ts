/**
 * The adaptation's rule sets on hosts: each host is sent its set when it changes, an empty one
 * once (it may hold a previous proxy's rules), and nothing while nothing changes.
 */
import { assertEquals } from "../support/assert.ts";
import { rulesPerHost, RuleSync } from "../../adapt/rule_sync.ts";
import type { ProxyMessage } from "../../agent/control/messages.ts";
import { hostPair } from "../../adapt/planner.ts";

function recorder(accept = () => true) {
  const sent: string[] = [];
  const sync = new RuleSync((h: string, m: ProxyMessage) => {
    if (m.type !== "rules-set") throw new Error(`unexpected ${m.type}`);
    sent.push(`${h}#${m.seq}:${m.rules.map((r) => `${r.src}>${r.dst}@${r.target}`).join(",")}`);
    return accept();
  });
  return { sent, sync };
}

const RULE = {
  host: "h1",
  src: "02:00:00:00:00:01",
  dst: "02:00:00:00:00:02",
  target: "peer:h2",
  reason: "heavy",
};

Deno.test("rule sync: an empty set once per host, then only changes", () => {
  const { sent, sync } = recorder();
  const hosts = ["h1", "h2", "h3"];
  sync.sync(new Map(), hosts);
  assertEquals(sent, ["h1#1:", "h2#2:", "h3#3:"]);
  sync.sync(new Map(), hosts);
  assertEquals(sent.length, 3, "nothing changed, nothing sent");
  const wanted = rulesPerHost([RULE], new Set([hostPair("h1", "h2")]));
  sync.sync(wanted, hosts);
  assertEquals(sent.slice(3), ["h1#4:02:00:00:00:00:01>02:00:00:00:00:02@peer:h2"]);
  sync.sync(wanted, hosts);
  assertEquals(sent.length, 4);
  // The fast path went down: h1's set empties again.
  sync.sync(rulesPerHost([RULE], new Set()), hosts);
  assertEquals(sent.slice(4), ["h1#5:"]);
  assertEquals(sync.converged(hosts), false);
  for (const h of hosts) sync.applied(h, sync.sentSeq(h));
  assertEquals(sync.converged(hosts), true);
});

Deno.test("rule sync: a host that rejoined, or whose send failed, is sent its set again", () => {
  let accept = false;
  const { sent, sync } = recorder(() => accept);
  sync.sync(new Map(), ["h1"]);
  assertEquals(sync.sentSeq("h1"), 0, "a failed send is not remembered");
  accept = true;
  sync.sync(new Map(), ["h1"]);
  sync.forget("h1");
  sync.sync(new Map(), ["h1"]);
  assertEquals(sent, ["h1#1:", "h1#2:", "h1#3:"]);
});

Deno.test("rule sync: rules of a host not in the overlay are not sent", () => {
  const { sent, sync } = recorder();
  sync.sync(rulesPerHost([RULE], new Set([hostPair("h1", "h2")])), ["h2"]);
  assertEquals(sent, ["h2#1:"]);
});
