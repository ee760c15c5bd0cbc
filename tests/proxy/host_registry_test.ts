/** A replaced connection closing must never remove the host's new link. */
import { assert, assertEquals } from "../support/assert.ts";
import { HostRegistry } from "../../proxy/host_registry.ts";
import type { Link } from "../../agent/link/link.ts";

Deno.test("host registry: replace, then the old link's removal is refused", () => {
  const r = new HostRegistry();
  const first = { name: "host:h1" } as unknown as Link;
  const second = { name: "host:h1" } as unknown as Link;
  assertEquals(r.add("h1", first), undefined);
  r.setListenAddress("h1", "10.0.0.1:7810");
  assertEquals(r.add("h1", second), first);
  assert(!r.remove("h1", first), "the old link does not remove the new one");
  assertEquals(r.hosts().get("h1"), second);
  assertEquals(r.listenAddress("h1"), "10.0.0.1:7810");
  assert(r.remove("h1", second));
  assertEquals(r.hosts().size, 0);
  assertEquals(r.listenAddress("h1"), null, "forgotten with the host");
});
