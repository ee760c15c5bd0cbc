/**
 * A host is its key (in-process, on the memory network and a manual clock): the join token
 * cannot take over a name that another key holds, a clone with the same name is turned away
 * without disturbing the host in place, a restarted host comes back with the identity and
 * credential in its state dir even after the token expired, a revoked host's key never comes
 * back, a fast path carries only its peer's VMs, and certificates are renewed while hosts run.
 */
import { assert, assertEquals } from "../support/assert.ts";
import { startOverlay } from "../support/sim.ts";
import type { NetConn } from "../../agent/link/transport.ts";
import { certificateInfo } from "../../agent/join/x509.ts";
import { generateHostKey } from "../../agent/join/host_key.ts";
import { joinProxy, NameTaken } from "../../agent/join/join.ts";
import { discoverCa } from "../../agent/join/discovery.ts";
import { BROADCAST_MAC, dstMac, formatMac, srcMac } from "../../agent/switch/ethernet.ts";
import { frame, packet, vmMac } from "../support/frames.ts";

const FAST = { keepalive: 100, deadAfter: 600, reconnectMax: 300, handshakeTimeout: 1000 };

Deno.test("sim trust: the token cannot take over a name; the host in place is not disturbed", async () => {
  const sim = await startOverlay({ hosts: 2, common: FAST });
  try {
    const h0Link = sim.proxy.hosts().get("h0");
    const refusedBefore = sim.proxy.refusals.refused ?? 0;
    // A token holder with a key of its own asks for h0's name, as the protocol allows.
    const reach = { transport: sim.transportFrom(), clock: sim.clock };
    const ca = await discoverCa(sim.proxy.address, sim.proxy.token.caHash, {
      timeoutMs: 2000,
      ...reach,
    });
    const key = generateHostKey();
    const err = await joinProxy(sim.proxy.address, {
      token: sim.proxy.token,
      caPem: ca,
      hello: { name: "h0", offload: false },
      spkiB64: key.spkiB64,
      timeoutMs: 2000,
      ...reach,
    }).then(() => null, (e) => e);
    assert(err instanceof NameTaken, `the intruder was admitted or refused otherwise: ${err}`);
    assert(err.message.includes("host name h0 is taken by another key"), err.message);
    assert(err.message.includes("agent hosts revoke h0"), err.message);
    // Refused, counted, and h0's link is the same one, still up.
    await sim.until(() => sim.proxy.refusals.refused === refusedBefore + 1, "the refusal counted");
    assertEquals(sim.proxy.hosts().get("h0"), h0Link);
    assertEquals(sim.hosts[0].joins(), 1, "h0 was never replaced");
  } finally {
    await sim.close();
  }
});

Deno.test("sim trust: a clone with the same name keeps asking and never displaces the original", async () => {
  const sim = await startOverlay({ hosts: 1, common: FAST });
  try {
    // A cloned VM: same --name, its own state dir, so its own key.
    const clone = await sim.joinAs("h0");
    try {
      await sim.until(
        () => (sim.proxy.refusals.refused ?? 0) >= 2,
        "the clone refused twice",
        5000,
      );
      assertEquals(clone.joins(), 0);
      assertEquals(clone.fatal(), null, "a taken name is not fatal: the operator may free it");
      assertEquals(sim.hosts[0].joins(), 1, "the original stayed");
      assert(sim.proxy.hosts().has("h0"));
    } finally {
      await clone.stop();
    }
  } finally {
    await sim.close();
  }
});

Deno.test("sim trust: a restarted host rejoins from its state dir after the token expired", async () => {
  const stateDir = await Deno.makeTempDir({ prefix: "vnet-trust-host-" });
  const sim = await startOverlay({ hosts: 0, common: FAST, proxy: { tokenTtl: 1500 } });
  try {
    const first = await sim.joinAs("keeper", { stateDir });
    await first.ready;
    await first.stop();
    const saved = JSON.parse(await Deno.readTextFile(`${stateDir}/host.json`));
    assertEquals((await Deno.stat(`${stateDir}/host.json`)).mode! & 0o777, 0o600);
    assertEquals(saved.rejoin.name, "keeper");
    // The token expires; the same host (same state dir) starts again.
    await sim.until(() => sim.clock.now() > sim.proxy.tokenExpiresAt()!, "the token expired");
    const again = await sim.joinAs("keeper", { stateDir });
    try {
      await sim.until(() => again.joins() === 1 || again.fatal() !== null, "the restart", 5000);
      assertEquals(again.fatal(), null);
      assert(sim.proxy.hosts().has("keeper"));
    } finally {
      await again.stop();
    }
  } finally {
    await sim.close();
    await Deno.remove(stateDir, { recursive: true });
  }
});

Deno.test("sim trust: a revoked host is cut off, its key denied, its name free again", async () => {
  const sim = await startOverlay({ hosts: 2, common: FAST });
  try {
    const call = async (method: string, path: string, body?: unknown) => {
      const res = await sim.apiFetch(path, {
        method,
        body: body ? JSON.stringify(body) : undefined,
      });
      return { status: res.status, body: await res.json() };
    };
    const listed = await call("GET", "/api/hosts");
    const h1 = listed.body.hosts.find((h: { name: string }) => h.name === "h1");
    assert(/^SHA256:/.test(h1.key) && h1.online && /^[0-9a-f]+$/i.test(h1.certSerial), h1);
    assert(h1.certExpires > sim.clock.now(), "the certificate's expiry is recorded");

    assertEquals((await call("POST", "/api/hosts/revoke", { name: "h1" })).status, 200);
    // Every other host has the key on its deny list: no fast path with it, ever.
    await sim.until(() => sim.hosts[0].fastPaths.trust.denied(h1.key), "h0 told of the key");
    // Its link closes and its reconnect is refused for good: the key is denied.
    await sim.until(() => sim.hosts[1].fatal() !== null, "h1 gives up", 5000);
    assert(sim.hosts[1].fatal()!.includes("was revoked"), sim.hosts[1].fatal()!);
    assert(!sim.proxy.hosts().has("h1"));
    const after = await call("GET", "/api/hosts");
    assertEquals(after.body.revoked.map((r: { key: string }) => r.key), [h1.key]);
    assert(!after.body.hosts.some((h: { name: string }) => h.name === "h1"), "record gone");
    assertEquals((await call("POST", "/api/hosts/revoke", { name: "h1" })).status, 404);

    // The name is free: a new host (new key) may take it; h0 never noticed.
    const fresh = await sim.joinAs("h1");
    try {
      await fresh.ready;
      assert(sim.proxy.hosts().has("h1"));
      assertEquals(sim.hosts[0].joins(), 1);
    } finally {
      await fresh.stop();
    }
  } finally {
    await sim.close();
  }
});

Deno.test("sim trust: a poisoned report is refused and counted; honest counts stay finite", async () => {
  // Reports once a minute: during the test every report is one the test sends.
  const sim = await startOverlay({ hosts: 2, common: { ...FAST, updateInterval: 60_000 } });
  try {
    const [d0, d1] = sim.devices;
    // The proxy learns VM 1 behind h0 and VM 2 behind h1.
    d0.inject(frame(BROADCAST_MAC, vmMac(1)));
    d1.inject(frame(BROADCAST_MAC, vmMac(2)));
    await sim.until(() => sim.proxy.switch.macs.size >= 2, "both VMs known", 3000);
    const vm = (n: number) => formatMac(vmMac(n));
    const refused = sim.proxy.reportRefusals;
    // h0 claims VM 2's traffic (h1's VM), astronomically, and traffic to nobody.
    sim.hosts[0].uplink()!.sendControl({
      type: "traffic",
      intervalMs: 60_000,
      pairs: [[vm(2), vm(1), 1e308, 1e308], [vm(1), "02:ee:ee:ee:ee:ee", 5, 1]],
      group: [[vm(2), 1e308, 1]],
      overflowFrames: 0,
    });
    await sim.until(() => refused["source not the reporter's"] === 2, "the forged entries", 3000);
    assertEquals(refused["unknown destination"], 1);
    // h1 reports its own VM's traffic, with a count no link could carry in the time covered.
    sim.hosts[1].uplink()!.sendControl({
      type: "traffic",
      intervalMs: 60_000,
      pairs: [[vm(2), vm(1), 1e15, 1000]],
      group: [],
      overflowFrames: 0,
    });
    await sim.until(() => refused.clamped === 1, "the honest but impossible count clamped", 3000);
    sim.proxy.vttif.tick(sim.clock.now());
    const matrix = sim.proxy.vttif.vttif.smoothedMatrix();
    assert(matrix.some((e) => e.src === vm(2) && e.dst === vm(1)), JSON.stringify(matrix));
    for (const e of matrix) {
      assert(Number.isFinite(e.bytesPerSec), `a finite matrix: ${JSON.stringify(e)}`);
    }
    assertEquals(refused["report too soon"], 0);
  } finally {
    await sim.close();
  }
});

Deno.test("sim trust: a flood on a host's fast-path listener is bounded, counted and survived", async () => {
  const sim = await startOverlay({
    hosts: 1,
    common: { ...FAST, maxHandshakesPerSource: 4, handshakeTimeout: 300 },
  });
  const silent: NetConn[] = [];
  try {
    const fp = sim.hosts[0].fastPaths;
    await sim.until(() => fp.address !== null, "the fast-path listener", 3000);
    const at = fp.address!;
    const flooder = sim.transportFrom("10.0.0.66");
    const connect = () => flooder.dial(at, { serverName: "h0.host.vnet", caPem: null });
    // 20 connections that never speak, from one address: 4 wait for their handshake timeout,
    // the rest are closed at once.
    for (let i = 0; i < 20; i++) silent.push(await connect());
    await sim.until(
      () => (fp.refusals["too many handshakes from one source"] ?? 0) === 16,
      "16 refused",
      3000,
    );
    // The silent four time out and free their slots: the listener admits four more.
    await sim.until(() => (fp.refusals["refused"] ?? 0) === 4, "the silent ones timed out");
    for (let i = 0; i < 4; i++) silent.push(await connect());
    await sim.until(
      () => (fp.refusals["refused"] ?? 0) === 8,
      "the next four admitted, then timed out",
      5000,
    );
    assertEquals(fp.refusals["too many handshakes from one source"], 16, "none of them refused");
    assertEquals(sim.hosts[0].fatal(), null);
  } finally {
    for (const c of silent) {
      try {
        c.close();
      } catch { /* closed by the host */ }
    }
    await sim.close();
  }
});

Deno.test("sim trust: a fast path carries only its peer's VMs; a new VM on the peer is let in", async () => {
  const fast = { ...FAST, updateInterval: 100, smoothing: 300, hysteresis: 300 };
  const sim = await startOverlay({ hosts: 3, common: fast, device: { writtenCapacity: 100_000 } });
  const [d0, d1, d2] = sim.devices;
  const [h0, h1] = sim.hosts;
  const traffic = sim.clock.every(5, () => {
    d0.inject(frame(vmMac(2), vmMac(1), 1000));
    d1.inject(frame(vmMac(1), vmMac(2), 1000));
  });
  try {
    for (const [d, n] of [[d0, 1], [d1, 2], [d2, 3]] as const) {
      d.inject(frame(BROADCAST_MAC, vmMac(n)));
    }
    await sim.until(() => h1.fastPaths.link("h0") !== undefined, "a fast path h0-h1");
    const link = h0.fastPaths.link("h1")!;
    // Unicast frames for VM 2 from `mac` (the announcements were broadcasts).
    const from = (d: typeof d1, mac: number) =>
      d.written.filter((p) => srcMac(p) === mac && dstMac(p) === vmMac(2)).length;

    // h0 forges h2's VM 3 on its fast path to h1: dropped and counted at h1.
    const spoofed = h1.switch.drops.spoofed;
    for (let i = 0; i < 5; i++) link.send(packet(vmMac(2), vmMac(3)));
    await sim.until(() => h1.switch.drops.spoofed === spoofed + 5, "the forged frames dropped");
    assertEquals(from(d1, vmMac(3)), 0, "no forged frame reached VM 2");

    // A VM that appears behind h0 later is announced to h1, and its frames are let in.
    d0.inject(frame(BROADCAST_MAC, vmMac(4)));
    await sim.until(() => h1.fastPaths.allows("peer:h0", vmMac(4)), "h1 told of VM 4");
    link.send(packet(vmMac(2), vmMac(4)));
    await sim.until(() => from(d1, vmMac(4)) === 1, "VM 4's frame over the fast path");
    assertEquals(h1.switch.drops.spoofed, spoofed + 5);
    assert(from(d1, vmMac(1)) > 0, "legitimate traffic kept flowing");
  } finally {
    traffic.cancel();
    await sim.close();
  }
});

Deno.test("sim trust: certificates are renewed while hosts run, and the listener presents the new one", async () => {
  // A one-minute lifetime: renewed with less than 20 s left, checked every 5 s.
  const sim = await startOverlay({ hosts: 2, proxy: { certLifetime: 60_000 } });
  try {
    const book = await (await sim.apiFetch("/api/hosts")).json();
    const first = book.hosts.find((h: { name: string }) => h.name === "h0");
    const fp = sim.hosts[0].fastPaths;
    assertEquals((await certificateInfo(fp.certificatePem)).serial, first.certSerial);
    assert(first.certExpires - sim.clock.now() <= 60_000, "issued for the lifetime asked");

    await sim.pass(45_000);
    const after = await (await sim.apiFetch("/api/hosts")).json();
    const renewed = after.hosts.find((h: { name: string }) => h.name === "h0");
    assert(renewed.certSerial !== first.certSerial, "a new certificate was issued");
    assert(renewed.certExpires > first.certExpires, "valid for longer");
    // The host had the new certificate before the proxy recorded it (sent first).
    assertEquals((await certificateInfo(fp.certificatePem)).serial, renewed.certSerial);
    assertEquals(sim.hosts[0].joins(), 1, "renewed over the running link, no rejoin");
  } finally {
    await sim.close();
  }
});
