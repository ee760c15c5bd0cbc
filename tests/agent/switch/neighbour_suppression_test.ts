import { assertEquals } from "../../support/assert.ts";
import { type Port, Switch } from "../../../agent/switch/switch.ts";
import { macAt } from "../../../agent/switch/ethernet.ts";
import { NeighbourSuppressor } from "../../../agent/switch/neighbour_suppression.ts";
import { arp, icmpv6Checksum, nd, v4, v6, v6Key } from "../../support/neighbour_frames.ts";
import { packet, vmMac } from "../../support/frames.ts";

const H = 10; // virtio-net header
const E = H + 14; // L3
const AGE = 60_000;

class CountingPort implements Port {
  readonly got: Uint8Array[] = [];
  constructor(readonly name: string, readonly kind: Port["kind"]) {}
  send(p: Uint8Array): boolean {
    this.got.push(p.slice());
    return true;
  }
}

/** A proxy with the LAN device and hosts host:1..host:49; VM i lives on host:i. */
function star(moveQuietMs = 0) {
  const sw = new Switch({ role: "proxy", maxMacs: 1000, macAgeMs: AGE, moveQuietMs });
  const ports = new Map<string, CountingPort>();
  const add = (p: CountingPort) => (ports.set(p.name, p), sw.attach(p));
  add(new CountingPort("device", "device"));
  for (let i = 1; i < 50; i++) add(new CountingPort(`host:${i}`, "host"));
  const n = sw.neighbours!;
  const received = () => {
    const out: Record<string, number> = {};
    for (const [name, p] of ports) if (p.got.length) out[name] = p.got.length;
    return out;
  };
  const clear = () => ports.forEach((p) => p.got.length = 0);
  /** VM i asks (broadcast) for `tpa`: it announces its own 10.0.0.i on the way. */
  const ask = (i: number, tpa: string, now: number, from = `host:${i}`) =>
    sw.forward(arp({ op: 1, sha: vmMac(i), spa: `10.0.0.${i}`, tpa }), from, now);
  return { sw, n, ports, received, clear, ask };
}

Deno.test("ARP for known addresses is answered to the asker and never flooded (50 ports)", () => {
  const { n, ports, received, clear, ask } = star();
  for (let i = 1; i < 50; i++) ask(i, "10.0.0.254", i); // unknown: flooded, and learned
  assertEquals(n.floods.unknown, 49);
  clear();
  ask(1, "10.0.0.2", 100);
  assertEquals(received(), { "host:1": 1 }, "only the asker gets a frame: the answer");
  const r = ports.get("host:1")!.got[0];
  assertEquals([macAt(r, H), macAt(r, H + 6), r[E + 7]], [vmMac(1), vmMac(2), 2]);
  assertEquals([macAt(r, E + 8), new DataView(r.buffer).getUint32(E + 14)], [
    vmMac(2),
    v4("10.0.0.2"),
  ]);
  assertEquals([macAt(r, E + 18), new DataView(r.buffer).getUint32(E + 24)], [
    vmMac(1),
    v4("10.0.0.1"),
  ]);
  clear();
  for (let i = 1; i < 50; i++) for (let j = 1; j < 50; j++) if (i !== j) ask(i, `10.0.0.${j}`, 200);
  for (let i = 1; i < 50; i++) assertEquals(ports.get(`host:${i}`)!.got.length, 48);
  assertEquals(ports.get("device")!.got.length, 0);
  assertEquals(n.suppressed.answered, 1 + 49 * 48);
  assertEquals(n.floods.unknown, 49, "no request for a known address flooded");
});

Deno.test("unknown targets, gratuitous ARP and probes are flooded to every other port", () => {
  const { sw, n, received, clear, ask } = star();
  ask(1, "10.0.0.200", 0);
  const everyOther = (except: string) =>
    Object.fromEntries(
      ["device", ...Array.from({ length: 49 }, (_, i) => `host:${i + 1}`)]
        .filter((p) => p !== except).map((p) => [p, 1]),
    );
  assertEquals(received(), everyOther("host:1"));
  clear();
  sw.forward(arp({ op: 1, sha: vmMac(3), spa: "10.0.0.3", tpa: "10.0.0.3" }), "host:3", 1);
  assertEquals(received(), everyOther("host:3"), "gratuitous ARP reaches everyone");
  clear();
  sw.forward(arp({ op: 1, sha: vmMac(4), spa: "0.0.0.0", tpa: "10.0.0.1" }), "host:4", 2);
  assertEquals(received(), everyOther("host:4"), "a probe (RFC 5227) reaches everyone");
  assertEquals([n.floods.unknown, n.floods.announcement], [1, 2]);
  ask(5, "10.0.0.3", 3); // learned from the gratuitous ARP
  assertEquals(n.suppressed.answered, 1);
});

Deno.test("bindings are learned only from the MAC's own frames on its own port", () => {
  const { sw, n, received, clear, ask } = star(5_000); // a live MAC cannot move
  ask(2, "10.0.0.254", 0);
  // host:3 puts VM 2's MAC in the ARP body, under its own Ethernet source.
  sw.forward(
    arp({ op: 2, src: vmMac(3), sha: vmMac(2), spa: "10.0.0.99", tpa: "10.0.0.1" }),
    "host:3",
    1,
  );
  // host:3 forges VM 2's Ethernet source too: the switch refuses the frame before learning.
  sw.forward(arp({ op: 2, sha: vmMac(2), spa: "10.0.0.98", tpa: "10.0.0.1" }), "host:3", 2);
  assertEquals([n.refusals.senderMismatch, sw.drops.spoofed], [1, 1]);
  assertEquals(n.table.lookup(v4("10.0.0.99"), 3), undefined);
  assertEquals(n.table.lookup(v4("10.0.0.98"), 3), undefined);
  clear();
  ask(1, "10.0.0.99", 4);
  assertEquals(Object.keys(received()).length, 49, "a poisoned address stays unknown: flooded");
  // A MAC the table places elsewhere (e.g. it was full when the frame came) teaches nothing.
  const elsewhere = new NeighbourSuppressor({
    macs: { lookup: (mac) => (mac === vmMac(2) ? "host:2" : undefined) },
    maxEntries: 10,
    ageMs: AGE,
  });
  elsewhere.inspect(arp({ op: 2, sha: vmMac(2), spa: "10.0.0.2", tpa: "10.0.0.1" }), "host:3", 0);
  assertEquals([elsewhere.refusals.notOwner, elsewhere.table.size], [1, 0]);
});

Deno.test("a second MAC claiming a fresh owner's address is refused, counted and flooded", () => {
  const { sw, n, ports, received, clear, ask } = star();
  ask(2, "10.0.0.254", 0);
  sw.forward(arp({ op: 1, sha: vmMac(3), spa: "10.0.0.2", tpa: "10.0.0.2" }), "host:3", 1_000);
  assertEquals([n.table.stats.conflicts, n.refusals.conflict], [1, 1]);
  assertEquals(n.table.lookup(v4("10.0.0.2"), 1_000)?.mac, vmMac(2));
  clear();
  ask(1, "10.0.0.2", 2_000);
  assertEquals(Object.keys(received()).length, 49, "contested: both may answer, as on a LAN");
  assertEquals(n.floods.contested, 1);
  // VM 2 went quiet (failover): VM 3's next claim takes the address; once uncontested, answered.
  sw.forward(arp({ op: 1, sha: vmMac(3), spa: "10.0.0.2", tpa: "10.0.0.2" }), "host:3", 12_000);
  assertEquals(n.table.lookup(v4("10.0.0.2"), 12_000)?.mac, vmMac(3));
  clear();
  ask(1, "10.0.0.2", 23_000);
  assertEquals(received(), { "host:1": 1 });
  assertEquals(macAt(ports.get("host:1")!.got[0], E + 8), vmMac(3), "the new owner's MAC");
  assertEquals(n.table.stats.conflicts, 2);
});

Deno.test("bindings age, and go with their MAC", () => {
  const { sw, n, received, clear, ask } = star();
  ask(2, "10.0.0.254", 0);
  ask(3, "10.0.0.254", AGE);
  sw.forward(packet(vmMac(9), vmMac(2)), "host:2", AGE); // VM 2 talks, but never re-ARPs
  clear();
  ask(1, "10.0.0.2", AGE + 1);
  assertEquals(Object.keys(received()).length, 49, "an unconfirmed binding ages like a MAC");
  sw.detach("host:3"); // VM 3's host left: its MAC, and so its binding, are gone
  clear();
  ask(1, "10.0.0.3", AGE + 2);
  assertEquals(Object.keys(received()).length, 48);
  assertEquals(n.table.size, 2, "forgotten on first use");
  assertEquals(n.floods.unknown, 4);
});

Deno.test("a binding follows its MAC when the VM migrates", () => {
  const { sw, n, received, clear, ask } = star();
  const ns = (i: number, target: string, now: number) =>
    sw.forward(nd({ type: 135, src: vmMac(i), srcIp: `fd00::${i}`, target }), `host:${i}`, now);
  ask(2, "10.0.0.254", 0);
  ns(2, "fd00::fe", 0); // VM 2's IPv6 address, learned from its solicitation
  clear();
  ns(1, "fd00::2", 1);
  assertEquals(received(), { "host:2": 1 }, "router flag unknown: to the owner alone");
  sw.forward(packet(vmMac(9), vmMac(2)), "host:7", 2); // VM 2 now speaks from host 7
  assertEquals(sw.macs.lookup(vmMac(2), 2), "host:7");
  clear();
  ns(1, "fd00::2", 3);
  assertEquals(received(), { "host:7": 1 });
  ask(1, "10.0.0.2", 4);
  assertEquals(received(), { "host:1": 1, "host:7": 1 }, "ARP is answered wherever VM 2 is");
  ask(7, "10.0.0.2", 5); // from VM 2's own host: its bridge delivered it already
  assertEquals(received(), { "host:1": 1, "host:7": 1 });
  assertEquals([n.suppressed.unicast, n.suppressed.answered, n.suppressed.local], [2, 1, 1]);
});

Deno.test("IPv6: a solicitation is answered with the owner's flags and a correct checksum", () => {
  const { sw, n, ports, received, clear } = star();
  const na = (i: number, ip: string, router: boolean) =>
    sw.forward(
      nd({ type: 136, src: vmMac(i), srcIp: ip, target: ip, flags: 0x20 | (router ? 0x80 : 0) }),
      `host:${i}`,
      0,
    );
  na(2, "fd00::2", false);
  na(3, "fe80::3", true);
  for (const [target, owner, r] of [["fd00::2", 2, 0], ["fe80::3", 3, 0x80]] as const) {
    clear();
    sw.forward(nd({ type: 135, src: vmMac(1), srcIp: "fe80::1", target }), "host:1", 1);
    assertEquals(received(), { "host:1": 1 });
    const a = ports.get("host:1")!.got[0];
    assertEquals(a.length, E + 40 + 32);
    assertEquals([macAt(a, H), macAt(a, H + 6), a[E - 2], a[E - 1]], [
      vmMac(1),
      vmMac(owner),
      0x86,
      0xdd,
    ]);
    assertEquals([a[E] >> 4, (a[E + 4] << 8) | a[E + 5], a[E + 6], a[E + 7]], [6, 32, 58, 255]);
    assertEquals([...a.subarray(E + 8, E + 24)], [...v6(target)], "from the target address");
    assertEquals([...a.subarray(E + 24, E + 40)], [...v6("fe80::1")], "to the asker");
    const icmp = E + 40;
    assertEquals([a[icmp], a[icmp + 1], a[icmp + 4]], [136, 0, r | 0x40 | 0x20]);
    assertEquals([...a.subarray(icmp + 8, icmp + 24)], [...v6(target)]);
    assertEquals([a[icmp + 24], a[icmp + 25], macAt(a, icmp + 26)], [2, 1, vmMac(owner)]);
    assertEquals((a[icmp + 2] << 8) | a[icmp + 3], icmpv6Checksum(a), "ICMPv6 checksum");
  }
  assertEquals(n.suppressed.answered, 2);
  // DAD (unspecified source) and an NS without the source option are flooded.
  clear();
  sw.forward(
    nd({ type: 135, src: vmMac(4), srcIp: "::", target: "fd00::2", lla: null }),
    "host:4",
    2,
  );
  sw.forward(
    nd({ type: 135, src: vmMac(5), srcIp: "fd00::5", target: "fd00::2", lla: null }),
    "host:5",
    2,
  );
  assertEquals(Object.values(received()).reduce((a, b) => a + b), 2 * 49);
  assertEquals([n.floods.announcement, n.floods.unverified, n.refusals.senderMismatch], [1, 1, 1]);
  // An ND message with a hop limit below 255 crossed a router: not learned, not answered.
  sw.forward(
    nd({ type: 136, src: vmMac(6), srcIp: "fd00::6", target: "fd00::6", hopLimit: 64 }),
    "host:6",
    3,
  );
  assertEquals(n.refusals.malformed, 1);
  assertEquals(n.table.lookup(v6Key("fd00::6"), 3), undefined);
  assertEquals(n.table.size, 3, "fd00::2, fe80::3 and the asker's fe80::1");
});

Deno.test("a host switch never suppresses, and the proxy's can be turned off", () => {
  const host = new Switch({ role: "host", maxMacs: 10, macAgeMs: AGE, moveQuietMs: 0 });
  const off = new Switch({
    role: "proxy",
    maxMacs: 10,
    macAgeMs: AGE,
    moveQuietMs: 0,
    neighbourSuppression: false,
  });
  assertEquals([host.neighbours, off.neighbours], [null, null]);
});
