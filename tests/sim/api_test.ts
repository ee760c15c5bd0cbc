/** The control API and the CLI's rule commands against an in-process overlay. */
import { assert, assertEquals } from "../support/assert.ts";
import { testConfig } from "../support/config.ts";
import { apiClient } from "../support/api_client.ts";
import { frame, vmMac } from "../support/frames.ts";
import { startOverlay } from "../support/sim.ts";
import { runProxy } from "../../proxy/proxy.ts";
import { apiHandler } from "../../proxy/api.ts";
import { VttifService } from "../../proxy/vttif_service.ts";
import { AdaptLoop } from "../../adapt/loop.ts";
import { EventHub } from "../../proxy/events.ts";
import { HostBook } from "../../proxy/host_book.ts";
import { ApiGuard } from "../../agent/api_guard.ts";
import { ReportGate } from "../../proxy/report_gate.ts";
import { EMPTY_GRAPH } from "../../inference/topology.ts";
import { Switch } from "../../agent/switch/switch.ts";
import { BROADCAST_MAC, formatMac } from "../../agent/switch/ethernet.ts";

/** A proxy on loopback with kernel-chosen ports and its state in `stateDir`. */
function loopbackProxy(stateDir: string) {
  const local = { hostname: "127.0.0.1", port: 0 };
  return runProxy(testConfig({ proxy: true, stateDir, listen: local, api: local }), {
    announceToken: () => {},
  });
}

Deno.test("api: rules added at runtime redirect traffic, and removing them restores it", async () => {
  const sim = await startOverlay({ hosts: 3 });
  const { hosts, devices: devs, until } = sim;
  const api = sim.apiFetch;
  const call = async (method: string, path: string, body?: unknown) => {
    const r = await api(path, { method, body: body ? JSON.stringify(body) : undefined });
    return { status: r.status, body: await r.json() };
  };
  try {
    const [a, b, c] = devs;
    // Let the proxy learn VM 2 behind h1.
    b.inject(frame(BROADCAST_MAC, vmMac(2)));
    await until(() => a.written.length === 1 && c.written.length === 1, "broadcast");
    const status = await call("GET", "/api/status");
    assertEquals(status.status, 200);
    assertEquals(status.body.hosts.map((h: { name: string }) => h.name).sort(), ["h0", "h1", "h2"]);

    // Proxy rule: frames for VM 2 go to h2 instead of h1.
    const vm2 = formatMac(vmMac(2));
    const added = await call("POST", "/api/rules", {
      src: "*",
      dst: vm2,
      target: "host:h2",
      reason: "test",
    });
    assertEquals(added.status, 201);
    a.inject(frame(vmMac(2), vmMac(1)));
    await until(() => c.written.length === 2, "redirected frame at h2");
    assertEquals(b.written.length, 0);
    const rules = await call("GET", "/api/rules");
    assertEquals(rules.body.proxy[0].frames, 1, "the rule counted the frame");
    assertEquals((await call("DELETE", `/api/rules?src=*&dst=${vm2}`)).status, 200);
    a.inject(frame(vmMac(2), vmMac(1)));
    await until(() => b.written.length === 1, "frame back at its owner");

    // Host rule: h0 drops frames for VM 2; the proxy remembers it for reconnects.
    assertEquals(
      (await call("POST", "/api/rules", { host: "h0", src: null, dst: vm2, target: "drop" }))
        .status,
      201,
    );
    await until(() => hosts[0].switch.rules.size === 1, "rule installed on h0");
    a.inject(frame(vmMac(2), vmMac(1)));
    await until(() => hosts[0].switch.drops.rule === 1, "h0 dropped by rule");
    assertEquals((await call("DELETE", `/api/rules?host=h0&src=*&dst=${vm2}`)).status, 200);
    await until(() => hosts[0].switch.rules.size === 0, "rule removed from h0");

    // VMs, metrics and the event stream.
    const vmList = (await call("GET", "/api/vms")).body as { mac: string; host: string }[];
    assertEquals(vmList.find((v) => v.mac === vm2)?.host, "h1");
    const metrics = await (await api("/metrics")).text();
    assert(/^vnet_hosts 3$/m.test(metrics), metrics);
    // Each host learned the CA once: answered, not counted among the refusals.
    assert(/^vnet_ca_discoveries_total 3$/m.test(metrics), metrics);
    assert(!/^vnet_connection_refusals_total\{reason="discovery"\}/m.test(metrics), metrics);
    // Each host said once where it listens: checked, nothing refused (but counted as such).
    assert(
      /^vnet_reachability_refusals_total\{reason="listening too often"\} 0$/m.test(metrics),
      metrics,
    );
    assert(/^vnet_port_rx_frames_total\{port="host:h1"\} \d+$/m.test(metrics), metrics);
    assert(/^# TYPE vnet_switch_drops_total counter$/m.test(metrics));
    const stream = await api("/api/events?stream");
    const reader = stream.body!.getReader();
    await hosts[2].stop();
    let text = "";
    while (!text.includes("event: host")) {
      text += new TextDecoder().decode((await reader.read()).value);
    }
    await reader.cancel();
    assert(/"host":"h2","state":"left"/.test(text), text);
    const recent = (await call("GET", "/api/events")).body as { type: string; host?: string }[];
    assert(
      recent.some((e) => e.type === "host" && e.host === "h0"),
      "joins are in the recent events",
    );

    const bad = await call("POST", "/api/rules", { src: "nope", dst: "*", target: "device" });
    assertEquals(bad.status, 400);
    assert(String(bad.body.error).includes("MAC"), bad.body.error);
  } finally {
    await sim.close();
  }
});

Deno.test("api: every request needs a credential and must name this API; the page logs in once", async () => {
  const guard = new ApiGuard("s3cret");
  guard.listensOn("127.0.0.1", 7801);
  const sw = new Switch({ role: "proxy", maxMacs: 10, macAgeMs: 1000, moveQuietMs: 0 });
  const handler = apiHandler(
    {
      switch: sw,
      hosts: () => new Map(),
      hostRules: new Map(),
      startedAt: 0,
      version: "t",
      vttif: new VttifService({
        updateIntervalMs: 1000,
        smoothingMs: 1000,
        threshold: 0.1,
        hysteresisMs: 0,
        maxPairs: 10,
      }),
      adapt: new AdaptLoop({
        hosts: () => new Map(),
        listenAddress: () => null,
        keyOf: () => null,
        vmHosts: () => new Map(),
        topology: () => EMPTY_GRAPH,
      }, { enabled: true, budget: null, pins: [], forbids: [], keepMargin: 0.5 }),
      events: new EventHub(),
      book: HostBook.empty("/nonexistent/hosts.json"),
      reports: new ReportGate(1000),
      revokeHost: () => Promise.resolve(null),
    },
    guard,
  );
  const at = "http://127.0.0.1:7801";
  const bearer = { authorization: "Bearer s3cret" };
  const status = (path: string, init: RequestInit = {}) =>
    handler(new Request(at + path, init)).then((r) => r.status);
  // A credential, also on loopback.
  assertEquals(await status("/api/status"), 401);
  assertEquals(await status("/api/status", { headers: { authorization: "Bearer nope" } }), 401);
  assertEquals(await status("/api/status", { headers: bearer }), 200);
  // A DNS-rebinding name (the browser sends the attacker's Host) and a foreign page.
  assertEquals(
    await handler(new Request("http://evil.example:7801/api/status", { headers: bearer }))
      .then((r) => r.status),
    403,
  );
  assertEquals(
    await status("/api/status", { headers: { ...bearer, origin: "http://evil.example" } }),
    403,
  );
  // A "simple" cross-site POST (text/plain) that would add a drop rule: never JSON enough.
  const drop = JSON.stringify({ src: "*", dst: "*", target: "drop" });
  assertEquals(await status("/api/rules", { method: "POST", body: drop }), 401);
  assertEquals(
    await status("/api/rules", {
      method: "POST",
      body: drop,
      headers: { ...bearer, "content-type": "text/plain" },
    }),
    415,
  );
  // The page: a one-time link, traded for a session cookie that then works alone.
  const link = await (await handler(
    new Request(at + "/api/login", {
      method: "POST",
      body: "{}",
      headers: { ...bearer, "content-type": "application/json" },
    }),
  )).json();
  const login = new URL(link.url);
  const visit = await handler(new Request(at + login.pathname + login.search));
  assertEquals(visit.status, 303);
  const cookie = visit.headers.get("set-cookie")!;
  assert(/HttpOnly/.test(cookie) && /SameSite=Strict/.test(cookie), cookie);
  const session = cookie.split(";")[0];
  assertEquals(await status("/api/status", { headers: { cookie: session } }), 200);
  assertEquals((await handler(new Request(at + login.pathname + login.search))).status, 403);
  assertEquals(guard.refused, {
    "foreign host": 1,
    "foreign origin": 1,
    "no credential": 3,
    "not json": 1,
    "bad login code": 1,
  });
});

Deno.test("api: a proxy restart keeps the operator's rules and adaptation settings", async () => {
  const stateDir = await Deno.makeTempDir({ prefix: "vnet-operator-" });
  const start = () => loopbackProxy(stateDir);
  try {
    const first = await start();
    const api = apiClient(first.apiAddress.port, stateDir);
    const send = (method: string, path: string, body?: unknown) =>
      api(path, { method, body: body === undefined ? undefined : JSON.stringify(body) })
        .then(async (r) => ({ status: r.status, body: await r.json() }));
    assertEquals(
      (await send("POST", "/api/rules", { src: "*", dst: formatMac(vmMac(2)), target: "drop" }))
        .status,
      201,
    );
    assertEquals(
      (await send("POST", "/api/rules", {
        host: "h7",
        src: formatMac(vmMac(1)),
        dst: "*",
        target: "proxy",
      })).status,
      201,
    );
    assertEquals((await send("PUT", "/api/adapt", { budget: 2, pin: ["a", "b"] })).status, 200);
    await first.stop();
    assertEquals((await Deno.stat(`${stateDir}/operator.json`)).mode! & 0o777, 0o600);

    const again = await start();
    try {
      const api2 = apiClient(again.apiAddress.port, stateDir);
      const rules = await (await api2("/api/rules")).json();
      assertEquals(
        rules.proxy.map((r: { dst: string; target: string }) => `${r.dst} ${r.target}`),
        [
          `${formatMac(vmMac(2))} drop`,
        ],
      );
      assertEquals(rules.hosts.h7.map((r: { src: string }) => r.src), [formatMac(vmMac(1))]);
      const adapt = await (await api2("/api/adapt")).json();
      assertEquals(adapt.settings.budget, 2, JSON.stringify(adapt.settings));
      assertEquals(adapt.settings.pins, ["a|b"]);
    } finally {
      await again.stop();
    }
  } finally {
    await Deno.remove(stateDir, { recursive: true });
  }
});
