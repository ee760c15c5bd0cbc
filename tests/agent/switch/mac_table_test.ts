/**
 * The MAC table reports what ageing removes: an address swept out left its port, and the
 * proxy withdraws it from the fast-path peers of the host it was behind (proxy/mac_events.ts).
 */
import { assertEquals } from "../../support/assert.ts";
import { MacTable } from "../../../agent/switch/mac_table.ts";

Deno.test("mac table: a sweep reports each aged entry with its port, after removing it", () => {
  const t = new MacTable({ maxEntries: 3, ageMs: 1000 });
  const aged: string[] = [];
  t.onAged = (mac, entry, now) => {
    // The table is settled when told: the entry is gone and its slot free.
    aged.push(`${mac} ${entry.port} ${now} size=${t.size} has=${t.get(mac) !== undefined}`);
  };
  t.learn(1, "host:a", 0);
  t.learn(2, "host:b", 0);
  t.learn(3, "host:b", 900);
  t.forget(2); // explicit: its caller knows, nothing reported
  t.learn(2, "host:b", 950);
  assertEquals(aged, []);
  // Full: the next new address sweeps, and only 1 is older than 1000 ms at 1500.
  assertEquals(t.learn(4, "host:c", 1500), "new");
  assertEquals(aged, ["1 host:a 1500 size=2 has=false"]);
  assertEquals(t.stats.aged, 1);
  assertEquals(t.countOn("host:a"), 0);
  assertEquals(t.sweep(5000), 3);
  assertEquals(aged.length, 4);
});
