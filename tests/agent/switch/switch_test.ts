import { assertEquals } from "../../support/assert.ts";
import { type Port, Switch } from "../../../agent/switch/switch.ts";
import { BROADCAST_MAC, dstMac, srcMac } from "../../../agent/switch/ethernet.ts";
import { packet, vmMac } from "../../support/frames.ts";

class RecordingPort implements Port {
  readonly got: string[] = [];
  constructor(readonly name: string, readonly kind: Port["kind"], private accept = true) {}
  send(p: Uint8Array): boolean {
    this.got.push(`${srcMac(p) % 256}>${dstMac(p) === BROADCAST_MAC ? "bc" : dstMac(p) % 256}`);
    return this.accept;
  }
}

function proxy(moveQuietMs = 0) {
  const sw = new Switch({ role: "proxy", maxMacs: 100, macAgeMs: 10_000, moveQuietMs });
  const a = new RecordingPort("host:a", "host");
  const b = new RecordingPort("host:b", "host");
  const lan = new RecordingPort("device", "device");
  for (const p of [a, b, lan]) sw.attach(p);
  return { sw, a, b, lan };
}

Deno.test("proxy floods broadcast to every other star port and learns sources", () => {
  const { sw, a, b, lan } = proxy();
  sw.forward(packet(BROADCAST_MAC, vmMac(1)), "host:a", 0);
  assertEquals([a.got, b.got, lan.got], [[], ["1>bc"], ["1>bc"]]);
  sw.forward(packet(vmMac(1), vmMac(2)), "host:b", 1);
  assertEquals(a.got, ["2>1"], "known unicast goes only to its owner");
  assertEquals(lan.got.length, 1);
});

Deno.test("proxy drops hairpin frames and ages MACs out", () => {
  const { sw, a, b } = proxy();
  sw.forward(packet(BROADCAST_MAC, vmMac(1)), "host:a", 0);
  sw.forward(packet(vmMac(1), vmMac(3)), "host:a", 1);
  assertEquals(sw.drops.hairpin, 1);
  sw.forward(packet(vmMac(1), vmMac(2)), "host:b", 20_000); // 1 aged: flooded
  assertEquals(a.got.includes("2>1"), true);
  assertEquals(b.got, ["1>bc"], "the flood skips the port it came from");
});

Deno.test("proxy anti-spoofing: a live MAC is refused elsewhere, a quiet one moves", () => {
  const { sw, a, b } = proxy(250);
  sw.forward(packet(BROADCAST_MAC, vmMac(1)), "host:a", 0);
  sw.forward(packet(BROADCAST_MAC, vmMac(1)), "host:b", 100); // still active on a
  assertEquals(sw.drops.spoofed, 1);
  assertEquals(sw.macs.lookup(vmMac(1), 100), "host:a");
  sw.forward(packet(BROADCAST_MAC, vmMac(1)), "host:b", 400); // quiet on a for 400 ms: moved
  assertEquals(sw.macs.lookup(vmMac(1), 400), "host:b");
  sw.forward(packet(vmMac(1), vmMac(9)), "device", 401);
  assertEquals(b.got.at(-1), "9>1");
  assertEquals(a.got.includes("9>1"), false);
});

Deno.test("host: device frames go up the star unless a rule says otherwise; link frames go down", () => {
  const sw = new Switch({ role: "host", maxMacs: 100, macAgeMs: 10_000, moveQuietMs: 0 });
  const dev = new RecordingPort("device", "device");
  const up = new RecordingPort("proxy", "uplink");
  const peer = new RecordingPort("peer:b", "peer");
  for (const p of [dev, up, peer]) sw.attach(p);
  sw.forward(packet(vmMac(2), vmMac(1)), "device", 0);
  sw.forward(packet(BROADCAST_MAC, vmMac(1)), "device", 0);
  sw.rules.add({ src: null, dst: vmMac(2), target: "peer:b" });
  sw.forward(packet(vmMac(2), vmMac(1)), "device", 1);
  sw.forward(packet(BROADCAST_MAC, vmMac(1)), "device", 1);
  assertEquals(up.got, ["1>2", "1>bc", "1>bc"], "broadcast stays on the star");
  assertEquals(peer.got, ["1>2"]);
  sw.detach("peer:b"); // link lost: traffic falls back at once
  sw.forward(packet(vmMac(2), vmMac(1)), "device", 2);
  assertEquals(up.got.at(-1), "1>2");
  sw.forward(packet(vmMac(1), vmMac(2)), "proxy", 3);
  assertEquals(dev.got, ["2>1"]);
  sw.forward(packet(vmMac(3), vmMac(1)), "proxy", 3); // claims a local VM: loop or spoof
  assertEquals(sw.drops.loop, 1);
  sw.forward(packet(vmMac(3), vmMac(1)), "device", 3);
  sw.forward(packet(vmMac(1), vmMac(3)), "device", 3); // both local: the bridge delivered it
  assertEquals(up.got.at(-1), "1>3");
});

Deno.test("host: group frames on a fast-path link are dropped, short frames counted", () => {
  const sw = new Switch({ role: "host", maxMacs: 100, macAgeMs: 10_000, moveQuietMs: 0 });
  const dev = new RecordingPort("device", "device");
  sw.attach(dev);
  sw.attach(new RecordingPort("peer:b", "peer"));
  sw.forward(packet(BROADCAST_MAC, vmMac(5)), "peer:b", 0);
  sw.forward(new Uint8Array(12), "peer:b", 0);
  assertEquals([sw.drops.groupOnFastPath, sw.drops.malformed, dev.got.length], [1, 1, 0]);
});

Deno.test("host: frames a peer still sends for a VM that left go to the proxy, for a while", () => {
  const sw = new Switch({ role: "host", maxMacs: 100, macAgeMs: 10_000, moveQuietMs: 0 });
  const dev = new RecordingPort("device", "device");
  const up = new RecordingPort("proxy", "uplink");
  const peer = new RecordingPort("peer:h3", "peer");
  for (const p of [dev, up, peer]) sw.attach(p);
  sw.forward(packet(vmMac(3), vmMac(1)), "device", 0); // VM 1 lives here
  sw.markMovedAway(vmMac(1), 100); // ...until it migrated away
  assertEquals(sw.macs.get(vmMac(1)), undefined, "no longer local");
  sw.forward(packet(vmMac(1), vmMac(3)), "peer:h3", 200); // h3's rules still point here
  // (VM 1's own frame went up first; the peer's frame for it follows, not to the device.)
  assertEquals([dev.got, up.got], [[], ["1>3", "3>1"]], "passed on to the proxy");
  sw.forward(packet(vmMac(1), vmMac(3)), "peer:h3", 20_000); // long after: the device again
  assertEquals(dev.got, ["3>1"]);
});

Deno.test("host: a VM that left and came back gets its peers' frames here again", () => {
  const sw = new Switch({ role: "host", maxMacs: 100, macAgeMs: 60_000, moveQuietMs: 250 });
  const dev = new RecordingPort("device", "device");
  const up = new RecordingPort("uplink", "uplink");
  const peer = new RecordingPort("peer:h3", "peer");
  for (const p of [dev, up, peer]) sw.attach(p);
  sw.forward(packet(vmMac(3), vmMac(1)), "device", 0);
  sw.markMovedAway(vmMac(1), 100); // migrated away...
  sw.forward(packet(vmMac(3), vmMac(1)), "device", 1600); // ...and back, 1.5 s later
  sw.forward(packet(vmMac(1), vmMac(3)), "peer:h3", 1700);
  assertEquals(dev.got, ["3>1"], "delivered to the VM, not passed on to the proxy");
});
