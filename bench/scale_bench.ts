/**
 * `deno task bench:scale`: how many hosts one proxy holds. N simulated hosts (one or more VMs
 * each, on in-memory devices) join one proxy at once, then idle, then carry a ring of small
 * frames (so every host reports traffic every interval), then one host floods and asks ARP.
 *
 *     tls     a real proxy process (`main.ts --proxy`, the agent task's permissions), the hosts
 *             spread over `--workers` worker processes (testbed/scale_worker.ts), real TLS
 *     memory  proxy and hosts in this process on the memory network, system clock
 *
 * Every row stands beside a baseline from the same run: the proxy with no hosts (RSS, CPU,
 * API latency), a flood to every host (frames per broadcast, against which an ARP request for
 * a known address is compared), and for the tls variant the same N on the memory transport.
 * The proxy's RSS and CPU come from /proc/PID/status and /proc/PID/stat (the memory variant
 * reads its own process, hosts included). Planner and VTTIF times come from the pure cores
 * over the same sizes, and the proxy's own last tick from /metrics.
 *
 *     usage: deno run --allow-all bench/scale_bench.ts [--hosts 100,1000] [--variants tls,memory]
 *            [--workers 4] [--vms-per-host 1] [--idle-seconds 5] [--report-seconds 5]
 *            [--vttif-vms 1024,100000] [--keepalive-ms 1000]
 *
 * @module
 */

import { systemClock } from "../agent/clock.ts";
import { formatAddress } from "../agent/config/types.ts";
import { formatJoinToken } from "../agent/join/token.ts";
import { MemoryNetwork } from "../agent/link/memory_transport.ts";
import { formatMac } from "../agent/switch/ethernet.ts";
import { plan } from "../adapt/planner.ts";
import { Vttif } from "../inference/vttif.ts";
import type { PairCount } from "../inference/traffic_matrix.ts";
import { buildTopology } from "../inference/topology.ts";
import { runProxy } from "../proxy/proxy.ts";
import { testConfig } from "../testbed/config.ts";
import { apiClient } from "../testbed/api_client.ts";
import { HostFleet, scaleVmMac } from "../testbed/scale_fleet.ts";
import type { WorkerArgs } from "../testbed/scale_worker.ts";
import { collectGarbage, cpuProfile, heapCensus } from "./heap_census.ts";

/** Longest the bench waits for one API reply. */
const API_TIMEOUT_MS = 120_000;

/** Where the proxy's inspector listens with `--heap-census`. */
const INSPECT_ADDRESS = "127.0.0.1:9239";

/** Longest a worker may take to answer one command (a 10,000-host join included). */
const WORKER_TIMEOUT_MS = 600_000;

const API_PATHS = ["/api/status", "/api/topology", "/api/vms", "/metrics"];
const KIB = 1024;
const MIB = 1024 * 1024;

/** Flags. */
interface Options {
  hosts: number[];
  variants: ("tls" | "memory")[];
  workers: number;
  vmsPerHost: number;
  idleSeconds: number;
  reportSeconds: number;
  vttifVms: number[];
}

function listFlag(name: string, fallback: string): string[] {
  const i = Deno.args.indexOf(name);
  return (i >= 0 ? Deno.args[i + 1] ?? "" : fallback).split(",").filter((s) => s !== "");
}

function numberFlag(name: string, fallback: number): number {
  const i = Deno.args.indexOf(name);
  if (i < 0) return fallback;
  const v = Number(Deno.args[i + 1]);
  if (!(v > 0)) {
    console.error(`${name}: expected a positive number, got ${Deno.args[i + 1] ?? "nothing"}`);
    Deno.exit(2);
  }
  return v;
}

function options(): Options {
  const numbers = (name: string, d: string) =>
    listFlag(name, d).map((s) => {
      const v = Number(s.replace(/_/g, ""));
      if (!(Number.isInteger(v) && v > 0)) {
        console.error(`${name}: expected whole numbers separated by commas, got ${s}`);
        Deno.exit(2);
      }
      return v;
    });
  const variants = listFlag("--variants", "tls,memory");
  for (const v of variants) {
    if (v !== "tls" && v !== "memory") {
      console.error(`--variants: expected tls and/or memory, got ${v}`);
      Deno.exit(2);
    }
  }
  return {
    hosts: numbers("--hosts", "100,1000"),
    variants: variants as Options["variants"],
    workers: numberFlag("--workers", 4),
    vmsPerHost: numberFlag("--vms-per-host", 1),
    idleSeconds: numberFlag("--idle-seconds", 5),
    reportSeconds: numberFlag("--report-seconds", 5),
    vttifVms: numbers("--vttif-vms", "1024,100000"),
  };
}

// ---- /proc ----

/** CPU seconds (user + system) a process has used. */
function cpuSeconds(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // Fields after the command name (which may hold spaces) in parentheses.
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100; // utime, stime (fields 14, 15); USER_HZ 100
}

/** Resident set size in bytes. */
function rssBytes(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * KIB;
}

/** Share of one core `pid` used over `seconds` from now. */
async function cpuShare(pid: number, seconds: number): Promise<number> {
  const c0 = cpuSeconds(pid);
  const t0 = performance.now();
  await sleep(seconds * 1000);
  return (cpuSeconds(pid) - c0) / ((performance.now() - t0) / 1000);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

// ---- what a run measures ----

/** One variant at one N. */
interface Row {
  variant: string;
  hosts: number;
  vms: number;
  joinS: number;
  joinProxyCpu: number;
  /** CPU of the processes running the simulated hosts during the storm, in cores. */
  joinWorkerCpu: number;
  /** Connections the proxy refused or dropped before admission (by then). */
  refusals: number;
  /** Established hosts (joined before the storm) that missed a keepalive during it / of. */
  missed: string;
  maxSilenceMs: number;
  maxRttMs: number;
  rssBase: number;
  rss: number;
  /** RSS once the proxy's garbage was collected (NaN: could not be). */
  rssGc: number;
  /** The proxy's V8 heap in use and external (ArrayBuffer) bytes, with no hosts and idle. */
  heapBase: number;
  heap: number;
  externalBase: number;
  external: number;
  cpuIdleBase: number;
  cpuIdle: number;
  cpuReports: number;
  broadcast: number;
  arpKnown: number;
  arpUnknown: number;
  apiBase: Record<string, number>;
  api: Record<string, number>;
  apiBytes: Record<string, number>;
  tickMs: number;
  reconnects: number;
}

/**
 * Median latency (ms) and size of each API path over `n` requests (one when the first takes
 * over two seconds: a reply that slow holds the proxy's event loop, and hosts' keepalives with
 * it). `/metrics` is asked last; its text is kept for the counters read from it.
 */
async function apiLatency(
  call: (path: string) => Promise<Response>,
  n = 5,
): Promise<{ ms: Record<string, number>; bytes: Record<string, number>; metrics: string }> {
  const ms: Record<string, number> = {};
  const bytes: Record<string, number> = {};
  let metrics = "";
  for (const path of API_PATHS) {
    const times: number[] = [];
    for (let i = 0; i < n && !(times[0] > 2000); i++) {
      const t0 = performance.now();
      let r: Response;
      try {
        r = await call(path);
      } catch (e) {
        console.error(`  ${path}: no reply (${(e as Error).message})`);
        times.push(Infinity);
        break;
      }
      const body = await r.arrayBuffer();
      times.push(performance.now() - t0);
      if (!r.ok) throw new Error(`Cannot measure ${path}: ${r.status}`);
      bytes[path] = body.byteLength;
      if (path === "/metrics") metrics = new TextDecoder().decode(body);
    }
    ms[path] = median(times);
  }
  return { ms, bytes, metrics };
}

/** The proxy's own view of its memory (`/api/status`). */
async function jsMemory(
  call: (path: string) => Promise<Response>,
): Promise<{ heap: number; external: number }> {
  const m = (await (await call("/api/status")).json()).memory as Deno.MemoryUsage;
  return { heap: m.heapUsed, external: m.external };
}

/** `call`, saying so on stderr when a reply takes over half a second (the proxy stalled). */
function slowCallsLogged(
  call: (path: string, init?: RequestInit) => Promise<Response>,
): (path: string) => Promise<Response> {
  return async (path) => {
    const t0 = performance.now();
    const r = await call(path, { signal: AbortSignal.timeout(API_TIMEOUT_MS) });
    const body = await r.arrayBuffer();
    const ms = performance.now() - t0;
    if (ms > 500) console.error(`  slow API reply: ${path} took ${ms.toFixed(0)} ms`);
    return new Response(body, { status: r.status, headers: r.headers });
  };
}

/**
 * With `--cpu-profile PHASE,...` naming `phase`: where the proxy's CPU goes for `ms` from
 * now (self time by function, on stderr).
 */
async function profiled(
  inspector: string | undefined,
  phase: string,
  ms: number,
  what: string,
): Promise<void> {
  const i = Deno.args.indexOf("--cpu-profile");
  if (!inspector || i < 0 || !(Deno.args[i + 1] ?? "").split(",").includes(phase)) return;
  const rows = await cpuProfile(inspector, ms);
  console.error(`  where the proxy's CPU goes in ${what} (self time over ${ms / 1000} s):`);
  for (const r of rows) console.error(`    ${r.selfMs.toFixed(0).padStart(6)} ms  ${r.name}`);
}

/** Connections refused before admission, all reasons, from /metrics' text. */
function refusalCount(metrics: string): number {
  let n = 0;
  for (const m of metrics.matchAll(/^vnet_connection_refusals_total\{[^}]*\} (\S+)$/gm)) {
    n += Number(m[1]);
  }
  return n;
}

/** The proxy's last VTTIF tick, ms (from /api/topology: /metrics may be slow at scale). */
async function tickMsOf(call: (path: string) => Promise<Response>): Promise<number> {
  return ((await (await call("/api/topology")).json()) as { lastTickMs: number }).lastTickMs;
}

/** The fleets of one run, wherever they live. */
interface Fleets {
  join(group: "established" | "storm"): Promise<number>;
  claim(): Promise<void>;
  /** A ring of frames among every VM, or among the established hosts' VMs alone. */
  ring(on: boolean, everyMs: number, group?: "established"): Promise<void>;
  broadcast(host: number): Promise<void>;
  arp(host: number, target: number): Promise<void>;
  received(): Promise<number>;
  health(
    keepaliveMs: number,
  ): Promise<{ missed: number; maxSilenceMs: number; maxRttMs: number; up: number }>;
  reconnects(): Promise<number>;
  stop(): Promise<void>;
}

/** How many hosts join before the storm, to watch for missed keepalives. */
function establishedCount(n: number): number {
  return Math.max(2, Math.min(100, Math.floor(n / 100)));
}

/** Runs the measurements common to both variants. */
async function measure(
  variant: string,
  n: number,
  o: Options,
  proxy: {
    pid: number;
    call: (path: string) => Promise<Response>;
    keepaliveMs: number;
    /** The processes the simulated hosts run in (none: they share the proxy's). */
    workerPids: number[];
    /** The proxy's inspector (host:port), when it has one. */
    inspector?: string;
  },
  fleets: Fleets,
): Promise<Row> {
  const vms = n * o.vmsPerHost;
  const log = (s: string) =>
    console.error(`${new Date().toISOString().slice(11, 23)} [${variant} ${n}] ${s}`);
  // Baseline: the proxy with no hosts.
  await sleep(1000);
  const rssBase = rssBytes(proxy.pid);
  const memBase = await jsMemory(proxy.call);
  const cpuIdleBase = await cpuShare(proxy.pid, o.idleSeconds);
  const apiBase = (await apiLatency(proxy.call)).ms;

  // A few hosts first, then the storm; the first ones must not miss keepalives meanwhile.
  // They carry a ring of frames meanwhile, so their links keep the busy keepalive (1 s).
  const e = establishedCount(n);
  await fleets.join("established");
  await fleets.ring(true, 1500, "established");
  await sleep(2000);
  await fleets.health(proxy.keepaliveMs); // starts the watch afresh
  log(`${e} established; storm of ${n - e}`);
  const c0 = cpuSeconds(proxy.pid);
  const w0 = proxy.workerPids.reduce((s, pid) => s + cpuSeconds(pid), 0);
  const storm = fleets.join("storm");
  await profiled(proxy.inspector, "storm", 10_000, "the join storm");
  const joinMs = await storm;
  const joinProxyCpu = (cpuSeconds(proxy.pid) - c0) / (joinMs / 1000);
  const joinWorkerCpu = (proxy.workerPids.reduce((s, pid) => s + cpuSeconds(pid), 0) - w0) /
    (joinMs / 1000);
  const during = await fleets.health(proxy.keepaliveMs);
  await fleets.ring(false, 0, "established");
  log(`joined in ${(joinMs / 1000).toFixed(1)} s; established: ${JSON.stringify(during)}`);

  // Idle.
  await sleep(3000);
  const cpuIdle = await cpuShare(proxy.pid, o.idleSeconds);
  const rss = rssBytes(proxy.pid);
  const mem = await jsMemory(proxy.call);
  // Garbage of the join storm still counts in RSS until V8 collects it: once collected, what
  // is left is what the idle hosts hold.
  let rssGc = NaN;
  if (proxy.inspector) {
    await collectGarbage(proxy.inspector);
    await sleep(2000);
    rssGc = rssBytes(proxy.pid);
  }
  if (Deno.args.includes("--heap-census") && proxy.inspector) {
    const rows = await heapCensus(proxy.inspector);
    console.error(`  heap census of the idle proxy (${n} hosts): bytes per host by constructor`);
    for (const r of rows) {
      console.error(
        `    ${(r.bytes / n).toFixed(0).padStart(7)} B/host ${
          (r.count / n).toFixed(1).padStart(6)
        } objects/host  ${r.name}`,
      );
    }
  }
  log(
    `idle: cpu ${(100 * cpuIdle).toFixed(1)}%, rss ${(rss / MIB).toFixed(0)} MiB, ` +
      `after a full GC ${(rssGc / MIB).toFixed(0)} MiB`,
  );

  // Addresses claimed, to the established VMs that the proxy knows (no flood), then a ring:
  // every host reports every interval.
  const claimProfile = profiled(proxy.inspector, "claim", 3000, "every VM's first frame");
  await fleets.claim();
  await sleep(2000);
  await claimProfile;
  await fleets.ring(true, 1000);
  await sleep(2500);
  const cpuReports = await cpuShare(proxy.pid, o.reportSeconds);
  await profiled(proxy.inspector, "reports", 5000, "every host reporting");
  const tickMs = await tickMsOf(proxy.call);
  await fleets.ring(false, 0);
  log(`reports: cpu ${(100 * cpuReports).toFixed(1)}%, tick ${tickMs.toFixed(1)} ms`);
  await sleep(1500);

  // Broadcast cost: one flood, one ARP for a known address, one for an unknown one.
  const flood = async (what: () => Promise<void>) => {
    await fleets.received();
    await what();
    await sleep(Math.min(5000, 1000 + n / 5));
    return await fleets.received();
  };
  const broadcast = await flood(() => fleets.broadcast(0));
  const arpKnown = await flood(() => fleets.arp(0, Math.floor(vms / 2)));
  const arpUnknown = await flood(() => fleets.arp(0, vms + 7));
  log(`broadcast ${broadcast}, arp known ${arpKnown}, arp unknown ${arpUnknown}`);

  const reconnects = await fleets.reconnects();
  const api = await apiLatency(proxy.call);
  const refusals = refusalCount(api.metrics);
  log(`API measured; ${reconnects} reconnects; stopping`);
  return {
    variant,
    hosts: n,
    vms,
    joinS: joinMs / 1000,
    joinProxyCpu,
    joinWorkerCpu,
    refusals,
    missed: `${during.missed} / ${e}`,
    maxSilenceMs: during.maxSilenceMs,
    maxRttMs: during.maxRttMs,
    rssBase,
    rss,
    rssGc,
    heapBase: memBase.heap,
    heap: mem.heap,
    externalBase: memBase.external,
    external: mem.external,
    cpuIdleBase,
    cpuIdle,
    cpuReports,
    broadcast,
    arpKnown,
    arpUnknown,
    apiBase,
    api: api.ms,
    apiBytes: api.bytes,
    tickMs,
    reconnects,
  };
}

// ---- variant: everything in this process, memory network ----

async function memoryRun(n: number, o: Options): Promise<Row> {
  const stateRoot = await Deno.makeTempDir({ prefix: "vnet-scale-" });
  const network = new MemoryNetwork();
  const vms = n * o.vmsPerHost;
  const proxyConfig = testConfig({
    proxy: true,
    stateDir: `${stateRoot}/proxy`,
    listen: { hostname: "10.0.0.1", port: 7800 },
    api: { hostname: "127.0.0.1", port: 0 },
    fastPaths: 0,
    maxMacs: Math.max(65_536, 2 * vms),
    maxVms: Math.max(65_536, 2 * vms),
    maxHandshakesPerSource: 256,
    logLevel: "warning",
  });
  const proxy = await runProxy(proxyConfig, {
    announceToken: () => {},
    transport: network.transport("10.0.0.1"),
    clock: systemClock,
  });
  const call = slowCallsLogged(apiClient(proxy.apiAddress.port, proxyConfig.stateDir));
  const e = establishedCount(n);
  const fleet = (first: number, count: number) =>
    new HostFleet({
      proxy: proxy.address,
      token: formatJoinToken(proxy.token),
      firstHost: first,
      hosts: count,
      vmsPerHost: o.vmsPerHost,
      transport: (i) => network.transport(`11.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`),
      clock: systemClock,
      stateRoot,
    });
  const groups = [fleet(0, e), fleet(e, n - e)];
  const all = () => groups;
  const hostOf = (h: number) => h < e ? [groups[0], h] as const : [groups[1], h - e] as const;
  const fleets: Fleets = {
    join: async (g) => (await groups[g === "established" ? 0 : 1].join()).ms,
    claim: () => Promise.resolve(all().forEach((f) => f.claim(e * o.vmsPerHost))),
    ring: (on, everyMs, group) =>
      Promise.resolve(
        group === "established"
          ? groups[0].ring(on, e * o.vmsPerHost, everyMs)
          : all().forEach((f) => f.ring(on, vms, everyMs)),
      ),
    broadcast: (h) => Promise.resolve(hostOf(h)[0].broadcast(hostOf(h)[1])),
    arp: (h, t) => Promise.resolve(hostOf(h)[0].arpFor(hostOf(h)[1], t)),
    received: () => {
      const r = groups[0].received + groups[1].received;
      groups[0].received = groups[1].received = 0;
      return Promise.resolve(r);
    },
    health: (k) => Promise.resolve(groups[0].health(k)),
    reconnects: () =>
      Promise.resolve(
        groups.reduce((s, f) => s + f.hosts.reduce((t, h) => t + h.joins() - 1, 0), 0),
      ),
    stop: async () => {
      await Promise.all(groups.map((f) => f.stop()));
    },
  };
  try {
    return await measure("memory (in-process)", n, o, {
      pid: Deno.pid,
      workerPids: [],
      call,
      keepaliveMs: proxyConfig.keepalive,
    }, fleets);
  } finally {
    await fleets.stop();
    await proxy.stop();
    await Deno.remove(stateRoot, { recursive: true });
  }
}

// ---- variant: a real proxy process, hosts in worker processes over TLS ----

/** The agent task's `deno run` arguments (its permissions and V8 flag), from deno.json. */
function agentRunArgs(): string[] {
  const root = new URL("../", import.meta.url).pathname;
  const tasks = JSON.parse(Deno.readTextFileSync(`${root}deno.json`)).tasks;
  const words = (tasks.agent as string).split(/\s+/);
  if (words[0] !== "deno") throw new Error("Cannot read the agent task: it does not run deno");
  // `--profile-proxy FILE`: V8's sampling profiler in the proxy (node --prof-process FILE).
  const i = Deno.args.indexOf("--profile-proxy");
  const prof = i >= 0 ? `,--prof,--no-logfile-per-isolate,--logfile=${Deno.args[i + 1]}` : "";
  // The proxy's inspector: its garbage collected before the RSS of idle hosts is read, and
  // with `--heap-census` a census of its heap.
  const inspect = [`--inspect=${INSPECT_ADDRESS}`];
  return words.slice(1).flatMap((w) =>
    w === "main.ts" ? [...inspect, `${root}main.ts`] : [w.startsWith("--v8-flags=") ? w + prof : w]
  );
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** A worker process and its command channel. */
class Worker {
  readonly #child: Deno.ChildProcess;
  get pid(): number {
    return this.#child.pid;
  }
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #lines: AsyncIterator<string>;
  #chain: Promise<unknown> = Promise.resolve();

  constructor(args: WorkerArgs) {
    const script = new URL("../testbed/scale_worker.ts", import.meta.url).pathname;
    this.#child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", script, JSON.stringify(args)],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#writer = this.#child.stdin.getWriter();
    this.#lines = this.#child.stdout.pipeThrough(new TextDecoderStream()).pipeThrough(
      lineSplitter(),
    ).values();
  }

  /** Sends one command; resolves with its answer (commands are answered in order). */
  call<T>(command: Record<string, unknown>): Promise<T> {
    const p = this.#chain.then(async () => {
      await this.#writer.write(new TextEncoder().encode(JSON.stringify(command) + "\n"));
      let timer: ReturnType<typeof setTimeout> | undefined;
      const r = await Promise.race([
        this.#lines.next(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`Cannot ${command.cmd}: no answer from the worker in time`)),
            WORKER_TIMEOUT_MS,
          );
        }),
      ]).finally(() => clearTimeout(timer));
      if (r.done) throw new Error(`Cannot ${command.cmd}: the worker exited`);
      const answer = JSON.parse(r.value);
      if (answer.error) throw new Error(`Worker failed to ${command.cmd}: ${answer.error}`);
      return answer as T;
    });
    this.#chain = p.catch(() => {});
    return p;
  }

  async stop(): Promise<void> {
    await this.call({ cmd: "stop" }).catch(() => {});
    await this.#child.status;
  }
}

function lineSplitter(): TransformStream<string, string> {
  let rest = "";
  return new TransformStream({
    transform(chunk, out) {
      rest += chunk;
      let nl: number;
      while ((nl = rest.indexOf("\n")) >= 0) {
        out.enqueue(rest.slice(0, nl));
        rest = rest.slice(nl + 1);
      }
    },
  });
}

async function tlsRun(n: number, o: Options): Promise<Row> {
  const stateRoot = await Deno.makeTempDir({ prefix: "vnet-scale-" });
  const vms = n * o.vmsPerHost;
  const port = freePort();
  const apiPort = freePort();
  const stateDir = `${stateRoot}/proxy`;
  const proxyArgs = [
    ...agentRunArgs(),
    "--proxy",
    "--listen",
    `127.0.0.1:${port}`,
    "--api",
    `127.0.0.1:${apiPort}`,
    "--state-dir",
    stateDir,
    "--fast-paths",
    "0",
    "--max-macs",
    String(Math.max(65_536, 2 * vms)),
    "--max-vms",
    String(Math.max(65_536, 2 * vms)),
    // Every simulated host dials from 127.0.0.1: one source, which real hosts never share;
    // as many handshakes from it as from everyone, and the whole waiting room.
    "--max-handshakes-per-source",
    "256",
    "--log-level",
    "warning",
  ];
  // The proxy's log (warnings and worse) goes to a file that outlives the run.
  const logPath = `/tmp/vnet-scale-proxy-${n}.log`;
  const logFile = await Deno.open(logPath, { write: true, create: true, truncate: true });
  const proxy = new Deno.Command(Deno.execPath(), {
    args: proxyArgs,
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const logged = proxy.stderr.pipeTo(logFile.writable);
  const workers: Worker[] = [];
  try {
    const until = Date.now() + 20_000;
    while (true) {
      try {
        const token = Deno.readTextFileSync(`${stateDir}/api.token`);
        if (token && (await fetch(`http://127.0.0.1:${apiPort}/api/status`)).status === 401) break;
      } catch { /* not yet */ }
      if (Date.now() > until) throw new Error("Cannot start the proxy: no API after 20 s");
      await sleep(100);
    }
    const call = slowCallsLogged(apiClient(apiPort, stateDir));
    const token = Deno.readTextFileSync(`${stateDir}/join.token`).trim();
    const e = establishedCount(n);
    const per = Math.ceil((n - e) / o.workers);
    const args = (first: number, count: number): WorkerArgs => ({
      proxy: formatAddress({ hostname: "127.0.0.1", port }),
      token,
      firstHost: first,
      hosts: count,
      vmsPerHost: o.vmsPerHost,
      totalVms: vms,
      listenBase: 10_000,
      stateRoot,
    });
    workers.push(new Worker(args(0, e)));
    for (let first = e; first < n; first += per) {
      workers.push(new Worker(args(first, Math.min(per, n - first))));
    }
    const firsts = workers.map((_, i) => (i === 0 ? 0 : e + (i - 1) * per));
    const workerOf = (h: number) => {
      let w = 0;
      while (w + 1 < workers.length && firsts[w + 1] <= h) w++;
      return workers[w];
    };
    const everyone = <T>(cmd: Record<string, unknown>) =>
      Promise.all(workers.map((w) => w.call<T>(cmd)));
    const fleets: Fleets = {
      join: async (g) => {
        const t0 = performance.now();
        if (g === "established") await workers[0].call({ cmd: "join" });
        else await Promise.all(workers.slice(1).map((w) => w.call({ cmd: "join" })));
        return performance.now() - t0;
      },
      claim: async () => void await everyone({ cmd: "claim", knownVms: e * o.vmsPerHost }),
      ring: async (on, everyMs, group) =>
        void await (group === "established"
          ? workers[0].call({ cmd: "ring", on, everyMs, ringVms: e * o.vmsPerHost })
          : everyone({ cmd: "ring", on, everyMs })),
      broadcast: async (h) => void await workerOf(h).call({ cmd: "broadcast", host: h }),
      arp: async (h, t) => void await workerOf(h).call({ cmd: "arp", host: h, target: t }),
      received: async () =>
        (await everyone<{ received: number }>({ cmd: "received" })).reduce(
          (s, r) => s + r.received,
          0,
        ),
      health: (k) => workers[0].call({ cmd: "health", keepaliveMs: k }),
      reconnects: async () => {
        const all = await everyone<{ reconnects: number }>({ cmd: "health", keepaliveMs: 1000 });
        console.error(`  hosts' health by worker: ${JSON.stringify(all)}`);
        return all.reduce((s, r) => s + r.reconnects, 0);
      },
      stop: async () => {
        await Promise.all(workers.map((w) => w.stop()));
      },
    };
    return await measure("tls (proxy process)", n, o, {
      pid: proxy.pid,
      workerPids: workers.map((w) => w.pid),
      inspector: INSPECT_ADDRESS,
      call,
      keepaliveMs: 1000,
    }, fleets);
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    try {
      proxy.kill("SIGTERM");
    } catch { /* gone */ }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const exited = await Promise.race([
      proxy.status.then(() => true),
      new Promise<false>((r) => timer = setTimeout(() => r(false), 15_000)),
    ]).finally(() => clearTimeout(timer));
    if (!exited) {
      console.error(`[tls ${n}] the proxy did not stop within 15 s of SIGTERM: killed`);
      proxy.kill("SIGKILL");
      await proxy.status;
    }
    await logged.catch(() => {});
    const warnings = (await Deno.readTextFile(logPath)).split("\n").filter((l) => l).length;
    console.error(`[tls ${n}] proxy log: ${logPath} (${warnings} lines)`);
    await Deno.remove(stateRoot, { recursive: true });
  }
}

// ---- the pure cores at the same sizes ----

/** A ring of `n` VMs on `n / vmsPerHost` hosts: the planner's input at that size. */
function plannerMs(n: number, vmsPerHost: number): number {
  const rates = new Map<string, number>();
  const mac = (i: number) => formatMac(scaleVmMac(i));
  const edges = Array.from({ length: n }, (_, i) => {
    const [a, b] = [mac(i), mac((i + 1) % n)].sort();
    return { a, b, bytesPerSec: 1000, weight: 1 };
  });
  rates.clear();
  const graph = {
    vms: [...new Set(edges.flatMap((x) => [x.a, x.b]))].sort(),
    edges: edges.sort((x, y) => (x.a < y.a ? -1 : x.a > y.a ? 1 : x.b < y.b ? -1 : 1)),
    maxBytesPerSec: 1000,
  };
  const vmHost = new Map(
    Array.from({ length: n }, (_, i) => [mac(i), `s${Math.floor(i / vmsPerHost)}`]),
  );
  const eligible = new Set(vmHost.values());
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    plan({
      graph,
      vmHost,
      eligible,
      current: new Set(),
      settings: { enabled: true, budget: 0, pins: [], forbids: [], keepMargin: 0.5 },
    });
    times.push(performance.now() - t0);
  }
  return median(times);
}

/** Median VTTIF tick (ms) over a 2D torus of about `n` VMs, every pair reporting. */
function vttifTickMs(n: number): { vms: number; pairs: number; ms: number; baselineMs: number } {
  const side = Math.round(Math.sqrt(n));
  const mac = (i: number) => formatMac(scaleVmMac(i));
  const id = (r: number, c: number) => ((r + side) % side) * side + ((c + side) % side);
  const report: PairCount[] = [];
  for (let r = 0; r < side; r++) {
    for (let c = 0; c < side; c++) {
      for (const to of [id(r, c + 1), id(r + 1, c), id(r, c - 1), id(r - 1, c)]) {
        report.push({ src: mac(id(r, c)), dst: mac(to), bytes: 1e6, frames: 700 });
      }
    }
  }
  const v = new Vttif({
    smoothingMs: 5000,
    threshold: 0.1,
    hysteresisMs: 3000,
    maxVms: Math.max(65_536, 2 * side * side),
  });
  v.tick(0);
  const ticks = side * side > 10_000 ? 6 : 20;
  const times: number[] = [];
  const base: number[] = [];
  for (let i = 1; i <= ticks; i++) {
    const b0 = performance.now();
    const m = new Map<string, number>();
    for (const p of report) m.set(p.src + p.dst, (m.get(p.src + p.dst) ?? 0) + p.bytes);
    base.push(performance.now() - b0);
    const t0 = performance.now();
    v.addReport(report);
    v.tick(i * 1000);
    times.push(performance.now() - t0);
  }
  // The first ticks build the index and declare the topology; the steady state is what repeats.
  const steady = times.slice(Math.min(3, times.length - 1));
  void buildTopology;
  return { vms: side * side, pairs: report.length, ms: median(steady), baselineMs: median(base) };
}

// ---- output ----

const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : "-");
const f0 = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : "-");
const msOrTimeout = (x: number) => (x === Infinity ? `> ${API_TIMEOUT_MS / 1000} s` : f1(x));
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

function printRows(rows: Row[]): void {
  const columns: [string, (r: Row) => string][] = [
    ["variant", (r) => r.variant],
    ["hosts", (r) => String(r.hosts)],
    [
      "join storm s (proxy CPU; hosts' CPU; refusals)",
      (r) =>
        `${f1(r.joinS)} (${pct(r.joinProxyCpu)}; ${
          r.variant.startsWith("memory") ? "same process" : pct(r.joinWorkerCpu)
        }; ${r.refusals})`,
    ],
    [
      "established hosts missing a keepalive (slowest keepalive ms, longest silence ms)",
      (r) => `${r.missed} (${f0(r.maxRttMs)}, ${f0(r.maxSilenceMs)})`,
    ],
    ["proxy RSS MiB (no hosts)", (r) => `${f0(r.rss / MIB)} (${f0(r.rssBase / MIB)})`],
    [
      "RSS per idle host KiB (V8 heap, buffers)",
      (r) =>
        `${f0((r.rss - r.rssBase) / r.hosts / KIB)} (${
          f0((r.heap - r.heapBase) / r.hosts / KIB)
        }, ${f0((r.external - r.externalBase) / r.hosts / KIB)})`,
    ],
    [
      "the same after a full GC, KiB",
      (r) => (Number.isFinite(r.rssGc) ? f0((r.rssGc - r.rssBase) / r.hosts / KIB) : "-"),
    ],
    ["proxy CPU idle (no hosts)", (r) => `${pct(r.cpuIdle)} (${pct(r.cpuIdleBase)})`],
    ["proxy CPU, every host reporting", (r) => pct(r.cpuReports)],
    ["frames per broadcast", (r) => String(r.broadcast)],
    ["ARP for a known address: frames (unknown address)", (r) => `${r.arpKnown} (${r.arpUnknown})`],
    ["VTTIF tick ms", (r) => f1(r.tickMs)],
    ["reconnects", (r) => String(r.reconnects)],
  ];
  table(columns, rows);
  console.log("");
  table([
    ["variant", (r) => r.variant],
    ["hosts", (r) => String(r.hosts)],
    ...API_PATHS.map((p): [string, (r: Row) => string] => [
      `${p} ms (no hosts; reply KiB)`,
      (r) => `${msOrTimeout(r.api[p])} (${f1(r.apiBase[p])}; ${f0(r.apiBytes[p] / KIB)})`,
    ]),
  ], rows);
}

function table(columns: [string, (r: Row) => string][], rows: Row[]): void {
  console.log(`| ${columns.map(([h]) => h).join(" | ")} |`);
  console.log(`|---|${columns.slice(1).map(() => "---:").join("|")}|`);
  for (const r of rows) console.log(`| ${columns.map(([, f]) => f(r)).join(" | ")} |`);
}

if (import.meta.main) {
  const o = options();
  const rows: Row[] = [];
  for (const n of o.hosts) {
    for (const v of o.variants) {
      console.error(`\n== ${v}, ${n} hosts ==`);
      rows.push(v === "tls" ? await tlsRun(n, o) : await memoryRun(n, o));
    }
  }
  console.log("");
  printRows(rows);
  console.log("\n| pure core | size | ms (median) | baseline ms | x baseline |");
  console.log("|---|---|---:|---:|---:|");
  for (const n of o.vttifVms) {
    const t = vttifTickMs(n);
    console.log(
      `| VTTIF tick (torus, report + smoothing + prune + classify) | ${t.vms} VMs, ${t.pairs} ` +
        `pairs | ${f1(t.ms)} | ${f1(t.baselineMs)} (fold the report into a Map) | ${
          f1(t.ms / t.baselineMs)
        } |`,
    );
  }
  for (const n of o.hosts) {
    const vms = n * o.vmsPerHost;
    const ms = plannerMs(vms, o.vmsPerHost);
    console.log(
      `| adaptation planner (ring, budget 0) | ${vms} VMs on ${n} hosts | ${f1(ms)} | - | - |`,
    );
  }
}
