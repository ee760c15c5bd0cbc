/**
 * The proxy's authority over MACs, alone and in a real switch: a claim on a MAC held by a live
 * host is held back while the holder is asked; "still here" refuses it, "gone" moves it at
 * once; only the holder's answer counts; LAN MACs never move to a host; a host cannot hold
 * more MACs than the bound.
 */
import { assert, assertEquals } from "../support/assert.ts";
import { MacAuthority, RECHECK_MS } from "../../proxy/mac_authority.ts";
import { type Port, Switch } from "../../agent/switch/switch.ts";
import { packet as frame } from "../support/frames.ts";

function authority() {
  const asked: string[] = [];
  const moved: string[] = [];
  const refused: string[] = [];
  let relocateOk = true;
  const a = new MacAuthority({
    ask: (host, mac) => (asked.push(`${host} ${mac}`), true),
    relocate: (mac, to) => (moved.push(`${mac} ${to}`), relocateOk),
    refused: (mac, by, held) => refused.push(`${mac} ${by} ${held}`),
  });
  return { a, asked, moved, refused, fail: () => (relocateOk = false) };
}

Deno.test("mac authority: the holder is asked once per recheck interval; its word decides", () => {
  const { a, asked, moved, refused } = authority();
  assertEquals(a.decide(5, "host:a", "host:b", 0), "pending");
  assertEquals(a.decide(5, "host:a", "host:b", RECHECK_MS - 1), "pending");
  assertEquals(asked.length, 1, "not asked again within the interval");
  assertEquals(a.decide(5, "host:a", "host:b", RECHECK_MS), "pending");
  assertEquals(asked.length, 2, "asked again after it");
  a.onStatus("b", 5, false, 10); // not the holder: ignored
  assertEquals(moved, []);
  a.onStatus("a", 5, true, 11); // the holder still has it: spoofing
  assertEquals(refused, ["5 host:b host:a"]);
  assertEquals(moved, []);
  a.onStatus("a", 5, false, 12); // no question outstanding any more: ignored
  assertEquals(moved, []);
});

Deno.test("mac authority: 'gone' moves the MAC to the claimant at once, or on its next frame", () => {
  const { a, moved, fail } = authority();
  a.decide(7, "host:a", "host:b", 0);
  a.onStatus("a", 7, false, 5);
  assertEquals(moved, ["7 host:b"]);
  // The claimant left meanwhile: the answer authorises the next claim from elsewhere.
  fail();
  a.decide(8, "host:a", "host:c", 0);
  a.onStatus("a", 8, false, 5);
  assertEquals(a.decide(8, "host:a", "host:d", 10), "move");
});

Deno.test("mac authority: LAN MACs never move to a host", () => {
  const { a, asked } = authority();
  assertEquals(a.decide(9, "device", "host:b", 0), "refuse");
  assertEquals(asked, [], "nobody to ask: the proxy's own LAN");
});

Deno.test("switch with the authority: claims held back, moved on the holder's word; a per-host bound", () => {
  const sent: string[] = [];
  const port = (name: string, kind: Port["kind"] = "host"): Port => ({
    name,
    kind,
    send: () => (sent.push(name), true),
  });
  const sw = new Switch({
    role: "proxy",
    maxMacs: 100,
    maxMacsPerPort: 2,
    macAgeMs: 60_000,
    moveQuietMs: 0,
  });
  const asked: string[] = [];
  const auth = new MacAuthority({
    ask: (host, mac) => (asked.push(`${host} ${mac}`), true),
    relocate: (mac, to, now) => sw.relocate(mac, to, now),
    refused: () => sw.drops.spoofed++,
  });
  sw.movePolicy = auth;
  for (const p of [port("host:a"), port("host:b"), port("device", "device")]) sw.attach(p);
  const vm = 0x020000000001;
  sw.forward(frame(0xffffffffffff, vm), "host:a", 0);
  assertEquals(sw.macs.lookup(vm, 1), "host:a");
  // b claims it: held back and a is asked.
  sw.forward(frame(0xffffffffffff, vm), "host:b", 10);
  assertEquals(sw.drops.claimPending, 1);
  assertEquals(sw.macs.lookup(vm, 11), "host:a");
  assertEquals(asked, ["a 02:00:00:00:00:01"]);
  const sentBefore = sent.length;
  auth.onStatus("a", vm, false, 12);
  assertEquals(sw.macs.lookup(vm, 13), "host:b", "moved on a's word, before b's next frame");
  // The frame held during the question goes on now (a broadcast: to a and to the LAN).
  assertEquals(sent.slice(sentBefore), ["host:a", "device"]);
  // A MAC on the proxy's LAN is never a host's.
  const lan = 0x020000000099;
  sw.forward(frame(0xffffffffffff, lan), "device", 20);
  sw.forward(frame(0xffffffffffff, lan), "host:a", 21);
  assertEquals(sw.drops.spoofed, 1);
  assertEquals(sw.macs.lookup(lan, 22), "device");
  // b holds one MAC; it may learn one more, not a third.
  sw.forward(frame(0xffffffffffff, 0x020000000002), "host:b", 30);
  sw.forward(frame(0xffffffffffff, 0x020000000003), "host:b", 31);
  assertEquals(sw.drops.portFull, 1);
  assert(sw.macs.lookup(0x020000000003, 32) === undefined, "the third was not learned");
});
