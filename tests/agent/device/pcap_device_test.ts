import assert from "node:assert/strict";
import { IS_ROOT, Netns, ROOT_ONLY } from "../../support/netns.ts";

const PROBE = new URL("./pcap_device_probe.ts", import.meta.url).pathname;

Deno.test({
  name: "PcapDevice on a veth end: reads behind a zero header, injects plain frames and " +
    "cut superframes, never reads its own" + ROOT_ONLY,
  ignore: !IS_ROOT,
  async fn() {
    const ns = await Netns.create("pcapdev");
    try {
      const [a, b] = await ns.vethPair();
      const report = await ns.probe(PROBE, a, b);
      assert.deepEqual(report.readBack, {
        count: 1,
        length: 70,
        headerZero: true,
        frameEqual: true,
      });
      assert.equal(report.plainWritten, true);
      assert.equal(report.superWritten, true);
      // 60-byte plain frame, then 4000 payload bytes as 1448 + 1448 + 1104 behind 54 bytes.
      assert.deepEqual(report.atVm, [60, 1502, 1502, 1158]);
      assert.equal(report.echoed, 0);
      assert.equal(report.stats.rxPackets, 1);
      assert.equal(report.stats.txPackets, 4);
      assert.equal(report.stats.txSegmented, 1);
      assert.equal(report.stats.txDropped, 0);
      assert.equal(report.captureStats.received, 1);
    } finally {
      await ns.destroy();
    }
  },
});
