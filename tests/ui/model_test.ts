/**
 * The live page's model (proxy/page/model.js) without a browser: from the API's replies to the
 * graph's elements and positions, and the star links' rates across refreshes.
 */
import { assert, assertEquals } from "../support/assert.ts";
import { graphElements, layout, overlayModel, StarRates } from "../../proxy/page/model.js";
import { LINKS, TOPOLOGY, VMS } from "../proxy/cli/api_replies.ts";
import { LAN_HOST } from "../../proxy/api_types.ts";

const [VM1, VM2, VM3] = TOPOLOGY.graph.vms;
const LAN_VM = VMS.find((v) => v.host === LAN_HOST)!.mac;

Deno.test("page model: hosts, VMs on hosts, on the LAN and unknown, and every element", () => {
  const model = overlayModel(LINKS, VMS, TOPOLOGY);
  assertEquals(model.hostNames, ["h1", "h2"]);
  assertEquals(model.lanVms, [LAN_VM]);
  // VMs VTTIF knows but the MAC table does not: shown apart, without a host.
  assertEquals(model.unknownVms, [VM2, VM3]);
  assertEquals(model.vmsByHost.get("h1"), [VM1]);

  const placed = layout(model);
  assert(placed.pos.get("proxy")!.y < placed.pos.get("host:h1")!.y, "the proxy above the hosts");
  assert(placed.pos.get("host:h1")!.x < placed.pos.get("host:h2")!.x, "hosts by name");
  assert(placed.pos.get(`vm:${VM1}`)!.y > placed.pos.get("host:h1")!.y, "VMs under their host");

  const elements = graphElements(model, placed, { rates: new StarRates(), now: 1000 });
  const ids = elements.map((e) => `${e.data.id} ${e.classes}`);
  assertEquals(ids, [
    "proxy proxy",
    "host:h1 host",
    "star:h1 star",
    "host:h2 host",
    "star:h2 star",
    `vm:${VM1} vm`,
    `attach:${VM1} attach`,
    `vm:${LAN_VM} vm`,
    `attach:${LAN_VM} attach`,
    `vm:${VM2} vm unknown`,
    `vm:${VM3} vm unknown`,
    "fast:h1|h2 fast up",
    `app:${VM1}|${VM2} app`,
    `app:${VM2}|${VM3} app`,
  ]);
  const attachLan = elements.find((e) => e.data.id === `attach:${LAN_VM}`)!;
  assertEquals(attachLan.data.source, "proxy", "a LAN VM hangs off the proxy");
  const fast = elements.find((e) => e.data.id === "fast:h1|h2")!;
  assert((fast.data.bend as number) < 0, "fast paths arc above the hosts");
  const h1 = elements.find((e) => e.data.id === "host:h1")!;
  assertEquals(h1.data.label, "h1\n1 VM · rtt 0.5 ms");
});

Deno.test("page model: a star link's rate is measured over at least half a second", () => {
  const rates = new StarRates();
  assertEquals(rates.label("h1", 1000, 0), "", "no rate before a second sample");
  assertEquals(rates.label("h1", 2000, 100), "", "too soon: the last label again");
  assertEquals(rates.label("h1", 501_000, 1000), "500 kB/s");
  assertEquals(rates.label("h1", 900_000, 1200), "500 kB/s", "too soon: the last label again");
  rates.keepOnly(() => false);
  assertEquals(rates.label("h1", 1_000_000, 2000), "", "a host that left starts over");
});
