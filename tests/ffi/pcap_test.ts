import assert from "node:assert/strict";
import { PcapError, PcapHandle } from "../../ffi/mod.ts";
import { IS_ROOT, Netns, ROOT_ONLY, uniqueIfName } from "../support/netns.ts";

const PROBE = new URL("./pcap_probe.ts", import.meta.url).pathname;

Deno.test({
  name: "PcapHandle on a veth pair in a namespace: capture, inject, direction, filter, stats" +
    ROOT_ONLY,
  ignore: !IS_ROOT,
  async fn() {
    const ns = await Netns.create("pcap");
    try {
      const [a, b] = await ns.vethPair();
      // libpcap captures in the caller's namespace: the captures run in a child inside `ns`.
      const report = await ns.probe(PROBE, a, b);
      // Frames injected at B are captured at A, and the filter kept only the right EtherType.
      assert.deepEqual(report.seenAtA, ["b2a-0", "b2a-1", "b2a-2"]);
      // Frames injected at A arrive at B ...
      assert.deepEqual(report.seenAtB, ["a2b-0", "a2b-1"]);
      // ... and are seen at A by a capture of both directions, never by the inbound-only one.
      assert.deepEqual([...report.seenBothWaysAtA].sort(), [
        "a2b-0",
        "a2b-1",
        "b2a-0",
        "b2a-1",
        "b2a-2",
      ]);
      assert.ok(report.statsA.received >= 3, JSON.stringify(report.statsA));
      assert.equal(report.statsA.dropped, 0);
      assert.equal(report.warning, null);
      assert.match(
        report.badFilterError,
        /^Cannot open capture on vf.*: filter "ether proto \(": /,
      );
      assert.match(report.badFilterError, /pcap_compile returned -1/);
    } finally {
      await ns.destroy();
    }
  },
});

Deno.test({
  name: "PcapHandle.open on a missing interface surfaces libpcap's text" + ROOT_ONLY,
  ignore: !IS_ROOT,
  fn() {
    const missing = uniqueIfName("n");
    assert.throws(
      () =>
        PcapHandle.open(missing, {
          snaplen: 2048,
          promisc: true,
          immediate: true,
          inboundOnly: true,
        }),
      (e: unknown) =>
        e instanceof PcapError && e.func === "pcap_activate" && e.status === -5 &&
        e.message.startsWith(`Cannot open capture on ${missing}: `) &&
        e.message.includes("No such device exists"),
    );
  },
});

Deno.test("libpcap that cannot be loaded: the error lists the path tried and the package", async () => {
  const code = `import { PcapHandle } from ${
    JSON.stringify(new URL("../../ffi/mod.ts", import.meta.url).href)
  };
    try { PcapHandle.open("lo", { snaplen: 64, promisc: false, immediate: true, inboundOnly: true }); }
    catch (e) { console.log(e.message); }`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", code],
    env: { VNET_LIBPCAP: "/nonexistent/libpcap.so.9" },
    stdout: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.match(text, /^Cannot load libpcap: tried \/nonexistent\/libpcap\.so\.9 \(/);
  assert.match(text, /apt-get install libpcap0\.8/);
});
