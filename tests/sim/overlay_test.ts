/**
 * A proxy and hosts in one process on the memory network and a manual clock, with in-memory
 * devices: the whole data path (device -> switch -> link -> wire -> link -> switch -> device)
 * without root, sockets or real waiting. The handshake-limit test runs on real sockets.
 */
import { assert, assertEquals } from "../support/assert.ts";
import { testConfig } from "../support/config.ts";
import { frame, vmMac } from "../support/frames.ts";
import { MemoryDevice } from "../../agent/device/memory_device.ts";
import { runHost } from "../../agent/host.ts";
import { type SimOverlay, startOverlay } from "../support/sim.ts";
import { formatJoinToken } from "../../agent/join/token.ts";
import { runProxy } from "../../proxy/proxy.ts";
import { BROADCAST_MAC, dstMac, srcMac } from "../../agent/switch/ethernet.ts";
import { MessageType, PREAMBLE_LEN, writeHeader, writePreamble } from "../../agent/link/wire.ts";
import { PROXY_TLS_NAME } from "../../agent/join/join.ts";

const FAST = { keepalive: 100, deadAfter: 600, reconnectMax: 300, handshakeTimeout: 1000 };

function overlay(hosts: number): Promise<SimOverlay> {
  return startOverlay({ hosts, common: FAST });
}

const seen = (d: MemoryDevice) =>
  d.written.map((p) =>
    `${srcMac(p) % 256}>${dstMac(p) === BROADCAST_MAC ? "bc" : dstMac(p) % 256}`
  );

Deno.test("sim: broadcast floods over the star, unicast reaches only its host", async () => {
  const o = await overlay(3);
  try {
    const [a, b, c] = o.devices;
    a.inject(frame(BROADCAST_MAC, vmMac(1)));
    await o.until(() => b.written.length === 1 && c.written.length === 1, "broadcast at b and c");
    b.inject(frame(vmMac(1), vmMac(2), 1400));
    await o.until(() => a.written.length === 1, "unicast at a");
    // A marker broadcast from b after the unicast: b's uplink and the proxy keep order, so
    // had the unicast been flooded, it would reach c before the marker does.
    b.inject(frame(BROADCAST_MAC, vmMac(2)));
    await o.until(() => c.written.length === 2 && a.written.length === 2, "the marker at a and c");
    assertEquals(seen(a), ["2>1", "2>bc"]);
    assertEquals(seen(c), ["1>bc", "2>bc"], "known unicast is not flooded");
    assertEquals(a.written[0].length, 10 + 14 + 1400, "frame arrives whole");
    assertEquals(o.proxy.switch.macs.lookup(vmMac(2), o.clock.now()), "host:h1");
  } finally {
    await o.close();
  }
});

Deno.test("sim: a host whose link drops reconnects and traffic resumes", async () => {
  const o = await overlay(2);
  try {
    const [a, b] = o.devices;
    o.proxy.hosts().get("h0")!.close("test cuts the link");
    await o.until(() => o.hosts[0].joins() === 2, "h0 rejoined");
    await o.until(() => o.proxy.hosts().size === 2, "proxy sees both hosts");
    a.inject(frame(BROADCAST_MAC, vmMac(1)));
    await o.until(() => b.written.length === 1, "broadcast after the reconnect");
  } finally {
    await o.close();
  }
});

Deno.test("sim: garbage, a wrong protocol version and a silent peer are refused; others keep working", async () => {
  const o = await overlay(2);
  try {
    const dial = async (bytes: Uint8Array | null) => {
      // Trust is irrelevant for a hostile client: it cannot verify and does not care.
      const conn = await o.transportFrom().dial(o.proxy.address, {
        serverName: PROXY_TLS_NAME,
        caPem: o.proxy.caPem,
      });
      if (bytes) await conn.write(bytes).catch(() => {});
      const buf = new Uint8Array(1024);
      const n = await conn.read(buf).catch(() => null);
      conn.close();
      return n;
    };
    const garbage = new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    const v9 = new Uint8Array(PREAMBLE_LEN + 4);
    writePreamble(v9, 0);
    v9[4] = 9;
    writeHeader(v9, PREAMBLE_LEN, MessageType.HELLO, 0);
    const dials = Promise.all([dial(garbage), dial(v9), dial(null)]);
    // The silent one is closed at the handshake timeout.
    await o.pass(FAST.handshakeTimeout + 100);
    const results = await dials;
    assertEquals(results, [null, null, null], "each is closed without an answer");
    assert(
      Object.values(o.proxy.refusals).reduce((a, b) => a + b, 0) >= 3,
      JSON.stringify(o.proxy.refusals),
    );
    o.devices[0].inject(frame(BROADCAST_MAC, vmMac(1)));
    await o.until(() => o.devices[1].written.length === 1, "traffic between the good hosts");
  } finally {
    await o.close();
  }
});

Deno.test("sim: handshakes are bounded per source; silent ones time out and make room", async () => {
  const stateDir = await Deno.makeTempDir({ prefix: "vnet-sim-" });
  const local = { hostname: "127.0.0.1", port: 0 };
  const proxy = await runProxy(
    testConfig({
      proxy: true,
      stateDir,
      listen: local,
      api: local,
      handshakeTimeout: 400,
      maxHandshakesPerSource: 4,
    }),
    { announceToken: () => {} },
  );
  const silent: Deno.TcpConn[] = [];
  try {
    for (let i = 0; i < 7; i++) silent.push(await Deno.connect(proxy.address));
    const end = Date.now() + 3000;
    while ((proxy.refusals["too many handshakes from one source"] ?? 0) < 3 && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assertEquals(
      proxy.refusals["too many handshakes from one source"],
      3,
      JSON.stringify(proxy.refusals),
    );
    await new Promise((r) => setTimeout(r, 600)); // the four in flight time out
    const dev = new MemoryDevice();
    const host = await runHost(
      testConfig({
        join: proxy.address,
        token: formatJoinToken(proxy.token),
        name: "late",
        ...FAST,
      }),
      { openDevice: () => dev },
    );
    await host.ready;
    assert(proxy.hosts().has("late"));
    await host.stop();
  } finally {
    for (const c of silent) {
      try {
        c.close();
      } catch { /* closed by the proxy */ }
    }
    await proxy.stop();
    await Deno.remove(stateDir, { recursive: true });
  }
});
