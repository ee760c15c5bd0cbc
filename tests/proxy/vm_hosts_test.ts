/**
 * The proxy's VM -> host map is built once and handed out again while the MAC table holds
 * the same answers, and rebuilt whenever it does not: held against a fresh build (a table
 * of its own, fed the same) after every kind of change.
 */
import { assert, assertEquals } from "../support/assert.ts";
import { MacTable } from "../../agent/switch/mac_table.ts";
import { vmHosts } from "../../proxy/vm_hosts.ts";

const AGE = 1000;

/** The map as a table fed the same would give it, with no history of its own. */
function fresh(log: [number, string, number][], forgotten: Set<number>, now: number) {
  const t = new MacTable({ maxEntries: 100, ageMs: AGE });
  for (const [mac, port, at] of log) if (!forgotten.has(mac)) t.learn(mac, port, at);
  return [...vmHosts(t, now)].sort();
}

Deno.test("vm hosts: the same map while nothing changes; rebuilt on every change and on ageing", () => {
  const t = new MacTable({ maxEntries: 100, ageMs: AGE });
  const log: [number, string, number][] = [];
  const forgotten = new Set<number>();
  const learn = (mac: number, port: string, at: number) => {
    t.learn(mac, port, at);
    log.push([mac, port, at]);
    forgotten.delete(mac);
  };
  const same = (now: number, why: string) =>
    assertEquals([...vmHosts(t, now)].sort(), fresh(log, forgotten, now), why);

  learn(1, "host:h1", 0);
  learn(2, "host:h2", 0);
  learn(3, "device", 0);
  const first = vmHosts(t, 100);
  same(100, "built");
  learn(1, "host:h1", 200); // refreshed: the same answers
  assert(vmHosts(t, 300) === first, "handed out again");
  learn(4, "host:h2", 400);
  same(400, "a new address");
  learn(4, "host:h1", 500);
  same(500, "moved");
  t.forget(4);
  forgotten.add(4);
  same(600, "forgotten");
  same(1100, "2 aged out (seen at 0); 1 was seen at 200");
  learn(2, "host:h2", 1150);
  same(1150, "2 seen again after it aged");
  t.forgetPort("host:h1");
  forgotten.add(1);
  same(1200, "its port went");
  t.sweep(5000);
  same(5000, "swept");
  assertEquals(vmHosts(t, 5000).size, 0);
});
