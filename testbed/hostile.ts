/**
 * The hostile-peer suite: every attack of the trust issue, tried against one in-process
 * overlay (memory network, manual clock) while two honest VMs exchange frames over a fast
 * path, each attack's refusal read from the counter that the operator would see, and the
 * honest frames counted at the other end. `tests/sim/hostile_test.ts` asserts it;
 * `deno task bench:hostile` prints the table for the README.
 *
 *     honest:   VM 1 (h0) <══ fast path ══> VM 2 (h1)       frames every 10 ms, both ways
 *     attacker: hx, an admitted host (has the token, its own key), plus strangers without it
 *     each attack ──> the counter it must move ──> refused? ──> the honest frames lost so far
 *
 * @module
 */

import { BROADCAST_MAC, formatMac, srcMac } from "../agent/switch/ethernet.ts";
import { VNET_HDR_LEN } from "../agent/packet/layout.ts";
import { MemoryDevice } from "../agent/device/memory_device.ts";
import { generateHostKey } from "../agent/join/host_key.ts";
import { discoverCa } from "../agent/join/discovery.ts";
import { joinProxy } from "../agent/join/join.ts";
import { PROXY_TLS_NAME } from "../agent/join/join.ts";
import type { NetConn } from "../agent/link/transport.ts";
import type { Address } from "../agent/config/types.ts";
import { type SimOverlay, startOverlay } from "./overlay.ts";

/** One attack's outcome. */
export interface AttackResult {
  attack: string;
  /** Attempts made (frames, connections, requests, joins). */
  tried: number;
  /** Attempts the counter shows refused. */
  refused: number;
  /** The counter read, as an operator finds it. */
  counter: string;
}

/** The suite's outcome. */
export interface HostileReport {
  attacks: AttackResult[];
  /** Honest frames sent and received during the whole suite. */
  honest: { sent: number; received: number };
}

/** A frame from `src` to `dst` (EtherType IPv4), as a VM puts it on the wire. */
function frame(dst: number, src: number, payload = 100): Uint8Array {
  const f = new Uint8Array(14 + payload);
  for (let i = 0; i < 6; i++) {
    f[i] = Number((BigInt(dst) >> BigInt(40 - 8 * i)) & 0xffn);
    f[6 + i] = Number((BigInt(src) >> BigInt(40 - 8 * i)) & 0xffn);
  }
  f[12] = 0x08;
  return f;
}

/** The same with the virtio-net header, as a link carries it. */
function packet(dst: number, src: number): Uint8Array {
  const p = new Uint8Array(VNET_HDR_LEN + 114);
  p.set(frame(dst, src), VNET_HDR_LEN);
  return p;
}

const VM = (n: number) => 0x0200_0000_0000 + n;
const HONEST_A = VM(1); // behind h0
const HONEST_B = VM(2); // behind h1
const VICTIM = VM(3); // behind h2, alive (it talks to the LAN gateway)
const LAN_GATEWAY = VM(0xfe); // on the proxy's LAN
const ATTACKER_VM = VM(9); // behind hx

const sum = (o: Readonly<Record<string, number>> | undefined) =>
  Object.values(o ?? {}).reduce((a, b) => a + b, 0);

/** Runs every attack in turn; returns what was tried, refused and lost. */
export async function runHostileSuite(): Promise<HostileReport> {
  const lan = new MemoryDevice({ name: "lan" });
  const fast = { updateInterval: 100, smoothing: 300, hysteresis: 300, handshakeTimeout: 1000 };
  const sim = await startOverlay({
    hosts: 3,
    common: { ...fast, maxHandshakesPerSource: 4 },
    device: { writtenCapacity: 1_000_000 },
    lan,
  });
  const [d0, d1, d2] = sim.devices;
  const honest = { sent: 0, received: 0 };
  const receivedAt = (d: MemoryDevice, src: number) =>
    d.written.filter((p) => srcMac(p) === src).length;
  const traffic = sim.clock.every(10, () => {
    d0.inject(frame(HONEST_B, HONEST_A));
    d1.inject(frame(HONEST_A, HONEST_B));
    honest.sent += 2;
    // The victim is alive: its host, which has no bridge here, vouches for VMs it heard
    // within move-quiet (a host on a bridge asks its forwarding database instead).
    d2.inject(frame(LAN_GATEWAY, VICTIM));
  });
  try {
    lan.inject(frame(BROADCAST_MAC, LAN_GATEWAY));
    d2.inject(frame(BROADCAST_MAC, VICTIM));
    await sim.until(() => sim.hosts[1].fastPaths.link("h0") !== undefined, "the honest fast path");
    const attackerDevice = new MemoryDevice({ name: "dx" });
    const hx = await sim.joinAs("hx", {}, attackerDevice);
    await hx.ready;
    attackerDevice.inject(frame(BROADCAST_MAC, ATTACKER_VM));
    await sim.until(() => sim.proxy.switch.macs.size >= 5, "every VM known");

    const attacks: AttackResult[] = [];
    for (const attack of ATTACKS) attacks.push(await attack(sim, { hx, attackerDevice }));

    traffic.cancel();
    await sim.pass(200); // the last honest frames arrive
    honest.received = receivedAt(d1, HONEST_A) + receivedAt(d0, HONEST_B);
    return { attacks, honest };
  } finally {
    traffic.cancel();
    await sim.close();
  }
}

function bearer(token: string): string {
  return `Authorization: Bearer ${token}\r\n`;
}

/** POSTs a rule that drops everything, as raw HTTP/1.1; resolves to the status code. */
async function rawPost(
  port: number,
  path: string,
  r: { host: string; type: string; extra: string },
): Promise<number> {
  const body = JSON.stringify({ src: "*", dst: "*", target: "drop" });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const head = `POST ${path} HTTP/1.1\r\nHost: ${r.host}\r\nContent-Type: ${r.type}\r\n` +
      `Content-Length: ${body.length}\r\nConnection: close\r\n${r.extra}\r\n`;
    await conn.write(new TextEncoder().encode(head + body));
    const buf = new Uint8Array(512);
    const n = await conn.read(buf);
    return Number(
      /^HTTP\/1\.1 (\d{3})/.exec(new TextDecoder().decode(buf.subarray(0, n ?? 0)))?.[1],
    );
  } finally {
    conn.close();
  }
}

/**
 * The attack of the attacker's host sending 20 frames from `mac`, which lives behind `owner`:
 * refused when the proxy dropped them (counted) and `mac` still lives behind `owner` afterwards.
 */
function claimAttack(
  mac: number,
  owner: string,
  label: { attack: string; counter: string },
): Attack {
  return async (sim, { attackerDevice }) => {
    const n = 20;
    const sw = sim.proxy.switch;
    const refused = await refusedBy(sim, () => sw.drops.spoofed + sw.drops.claimPending, n, () => {
      for (let i = 0; i < n; i++) attackerDevice.inject(frame(HONEST_B, mac));
    });
    await sim.pass(100); // the old host's answer to the proxy's mac-check
    const kept = sw.macs.get(mac)?.port === owner;
    return { ...label, tried: n, refused: kept ? Math.min(refused, n) : 0 };
  };
}

/**
 * The attack of 30 connections from one address held open on a listener without a word: each
 * is refused (closed at the handshake timeout, or at once past the per-source bound).
 */
function floodAttack(target: {
  from: string;
  to: (sim: SimOverlay) => Address;
  serverName: string;
  refusals: (sim: SimOverlay) => number;
  attack: string;
  counter: string;
}): Attack {
  return async (sim) => {
    const n = 30;
    const flooder = sim.transportFrom(target.from);
    const conns: NetConn[] = [];
    const refused = await refusedBy(sim, () => target.refusals(sim), n, async () => {
      for (let i = 0; i < n; i++) {
        conns.push(
          await flooder.dial(target.to(sim), { serverName: target.serverName, caPem: null }),
        );
      }
      await sim.pass(1100);
    });
    for (const c of conns) c.close();
    const { attack, counter } = target;
    return { attack, tried: n, refused: Math.min(refused, n), counter };
  };
}

type Attacker = { hx: Awaited<ReturnType<SimOverlay["joinAs"]>>; attackerDevice: MemoryDevice };
type Attack = (sim: SimOverlay, a: Attacker) => Promise<AttackResult>;

/** Counts `counter()` before and after `act`, waiting until it moved by `tried`. */
async function refusedBy(
  sim: SimOverlay,
  counter: () => number,
  tried: number,
  act: () => unknown,
): Promise<number> {
  const before = counter();
  await act();
  await sim.until(() => counter() - before >= tried, "the refusals counted", 5000).catch(() => {});
  return counter() - before;
}

const ATTACKS: Attack[] = [
  async function nameTakeover(sim) {
    const reach = { transport: sim.transportFrom(), clock: sim.clock };
    const refused = await refusedBy(sim, () => sim.proxy.refusals.refused ?? 0, 1, async () => {
      const caPem = await discoverCa(sim.proxy.address, sim.proxy.token.caHash, {
        timeoutMs: 2000,
        ...reach,
      });
      await joinProxy(sim.proxy.address, {
        token: sim.proxy.token,
        caPem,
        hello: { name: "h0", offload: false },
        spkiB64: (generateHostKey()).spkiB64,
        timeoutMs: 2000,
        ...reach,
      }).catch(() => {});
    });
    return {
      attack: "take over a host's name with the join token",
      tried: 1,
      refused,
      counter: 'vnet_connection_refusals_total{reason="refused"}',
    };
  },
  async function clone(sim) {
    let clone: Awaited<ReturnType<SimOverlay["joinAs"]>> | null = null;
    const refused = await refusedBy(sim, () => sim.proxy.refusals.refused ?? 0, 3, async () => {
      clone = await sim.joinAs("h1");
    });
    await clone!.stop();
    return {
      attack: "a clone joins under a live host's name",
      tried: refused,
      refused,
      counter: 'vnet_connection_refusals_total{reason="refused"}',
    };
  },
  claimAttack(VICTIM, "host:h2", {
    attack: "send as another host's live VM, over the star",
    counter: 'vnet_switch_drops_total{reason="spoofed" or "claimPending"}',
  }),
  async function fastPathTheft(sim) {
    const n = 20;
    const h1 = sim.hosts[1];
    const link = sim.hosts[0].fastPaths.link("h1")!;
    const refused = await refusedBy(sim, () => h1.switch.drops.spoofed, n, () => {
      for (let i = 0; i < n; i++) link.send(packet(HONEST_B, VICTIM));
    });
    return {
      attack: "send as another host's VM, over a fast path",
      tried: n,
      refused,
      counter: 'vnet_switch_drops_total{reason="spoofed"} on the peer host',
    };
  },
  claimAttack(LAN_GATEWAY, "device", {
    attack: "claim the LAN gateway's MAC",
    counter: 'vnet_switch_drops_total{reason="spoofed"}',
  }),
  async function poisonedReport(sim, { hx }) {
    // Three poisoned entries; each is refused when it never reaches the proxy's matrix.
    hx.uplink()!.sendControl({
      type: "traffic",
      intervalMs: 100,
      pairs: [
        [formatMac(VICTIM), formatMac(HONEST_A), 1e308, 1e308],
        [formatMac(ATTACKER_VM), "02:ee:ee:ee:ee:ee", 5, 1],
      ],
      group: [[formatMac(HONEST_B), 1e308, 1]],
      overflowFrames: 0,
    });
    await sim.pass(300);
    const vttif = sim.proxy.vttif;
    vttif.tick(sim.clock.now());
    const matrix = vttif.vttif.smoothedMatrix();
    const present = [
      matrix.some((e) => e.src === formatMac(VICTIM) && e.dst === formatMac(HONEST_A)),
      matrix.some((e) => e.dst === "02:ee:ee:ee:ee:ee"),
      (vttif.snapshot(0).groupBytesPerSec[formatMac(HONEST_B)] ?? 0) > 0,
    ].filter(Boolean).length;
    return {
      attack: "report another host's VMs, impossible counts, unknown destinations",
      tried: 3,
      refused: 3 - present,
      counter: "vnet_report_refusals_total",
    };
  },
  async function browserAndLocalUser(sim) {
    const port = new URL(sim.api).port;
    const here = `127.0.0.1:${port}`;
    // Written as raw HTTP: fetch would not send a forged Host.
    const requests = [
      // A cross-site "simple" POST from a web page: no credential, text/plain.
      { host: here, type: "text/plain", extra: "Origin: https://evil.example\r\n" },
      // A page on a rebinding name (even one that somehow had the token).
      { host: `evil.example:${port}`, type: "application/json", extra: bearer(sim.apiToken) },
      // The token holder's request, but not JSON (a form post).
      { host: here, type: "application/x-www-form-urlencoded", extra: bearer(sim.apiToken) },
      // A local user without the token.
      { host: here, type: "application/json", extra: "" },
    ];
    let refused = 0;
    for (const r of requests) {
      const status = await rawPost(Number(port), "/api/rules", r);
      if (status === 401 || status === 403 || status === 415) refused++;
    }
    const rules = await (await sim.apiFetch("/api/rules")).json();
    if (rules.proxy.length > 0) refused = 0; // a rule got in: nothing was refused in effect
    return {
      attack: "drive the API from a web page or without the token",
      tried: requests.length,
      refused,
      counter: "vnet_api_refusals_total",
    };
  },
  // Four get a handshake slot and are closed at the handshake timeout; the rest at once.
  floodAttack({
    from: "10.0.0.66",
    to: (sim) => sim.proxy.address,
    serverName: PROXY_TLS_NAME,
    refusals: (sim) => sum(sim.proxy.refusals),
    attack: "hold connections open on the join listener, from one address",
    counter: "vnet_connection_refusals_total",
  }),
  floodAttack({
    from: "10.0.0.67",
    to: (sim) => sim.hosts[1].fastPaths.address!,
    serverName: "x",
    refusals: (sim) => sum(sim.hosts[1].fastPaths.refusals),
    attack: "hold connections open on a host's fast-path listener",
    counter: "fastPathRefusals (host status)",
  }),
  async function revokedReturns(sim, { hx }) {
    await sim.apiFetch("/api/hosts/revoke", {
      method: "POST",
      body: JSON.stringify({ name: "hx" }),
    })
      .then((r) => r.body?.cancel());
    await sim.until(() => hx.fatal() !== null, "the revoked host to give up", 5000).catch(() => {});
    const refused = hx.fatal()?.includes("revoked") ? 1 : 0;
    return {
      attack: "a revoked host comes back",
      tried: 1,
      refused,
      counter: 'vnet_connection_refusals_total{reason="refused"}',
    };
  },
];
