/**
 * One `bench:scale` run, whatever runs the hosts: the phases in order, each measured on the
 * proxy under test, into one {@linkcode ScaleRow}.
 *
 *     baseline (no hosts) ──> a few established hosts ──> the storm (they must not miss
 *     keepalives) ──> idle ──> every VM claims its address ──> a ring: every host reports
 *     ──> one flood, one ARP for a known address, one for an unknown one ──> the API
 *
 * The variants (scale_memory.ts, scale_tls.ts) provide the {@linkcode Fleets} and the
 * {@linkcode ProxyUnderTest}.
 *
 * @module
 */

import { claimSpreadMs } from "./scale_fleet.ts";
import { collectGarbage, heapCensus } from "./inspector.ts";
import {
  type ApiCall,
  apiLatency,
  cpuSeconds,
  cpuShare,
  jsMemory,
  profiled,
  refusalCount,
  rssBytes,
  sleep,
  tickMsOf,
} from "./scale_probe.ts";

/** What a run is told, from the bench's flags. */
export interface ScaleOptions {
  vmsPerHost: number;
  /** How often each VM sends its ring frame, ms (its host then reports that often). */
  ringMs: number;
  /** Seconds of CPU sampling at idle, and with every host reporting. */
  idleSeconds: number;
  reportSeconds: number;
  /** Worker processes of the tls variant. */
  workers: number;
  /** Niceness of the tls variant's storm workers (0: they compete with the proxy as equals). */
  stormNice: number;
  /** Phases whose proxy CPU is profiled through its inspector (storm, idle, claim, reports, api). */
  profile: string[];
  /** Whether to print a census of the idle proxy's heap. */
  heapCensus: boolean;
}

/** The proxy being measured. */
export interface ProxyUnderTest {
  pid: number;
  call: ApiCall;
  keepaliveMs: number;
  /** The processes the simulated hosts run in (none: they share the proxy's). */
  workerPids: number[];
  /** The proxy's inspector (host:port), when it has one. */
  inspector?: string;
}

/** The hosts of one run, wherever they live. */
export interface Fleets {
  join(group: "established" | "storm"): Promise<number>;
  /** Every VM claims its address, the claims spread over `overMs`. */
  claim(overMs: number): Promise<void>;
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

/** One variant at one N. */
export interface ScaleRow {
  variant: string;
  hosts: number;
  vms: number;
  joinS: number;
  joinProxyCpu: number;
  /** CPU of the processes running the simulated hosts during the storm, in cores. */
  joinWorkerCpu: number;
  /** Connections the proxy refused or dropped before admission (by the end). */
  /** Refused before admission (CA discoveries aside), and by reason. */
  refusals: { total: number; byReason: string };
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
  /** Once the storm's garbage is collected (the steady state). */
  cpuIdle: number;
  /** Right after the storm (its last links idle), while V8 still collects its garbage. */
  cpuIdleSettling: number;
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

/** How many hosts join before the storm, to watch for missed keepalives. */
export function establishedCount(n: number): number {
  return Math.max(2, Math.min(100, Math.floor(n / 100)));
}

/** A line on stderr, timed and labelled. */
type Log = (s: string) => void;

/** Runs every phase against `proxy` with `fleets` of `n` hosts. */
export async function measure(
  variant: string,
  n: number,
  o: ScaleOptions,
  proxy: ProxyUnderTest,
  fleets: Fleets,
): Promise<ScaleRow> {
  const log: Log = (s) =>
    console.error(`${new Date().toISOString().slice(11, 23)} [${variant} ${n}] ${s}`);
  const base = await baseline(proxy, o);
  const storm = await joinStorm(n, o, proxy, fleets, log);
  const idle = await idlePhase(n, o, proxy, log);
  const reports = await reportPhase(n * o.vmsPerHost, o, proxy, fleets, log);
  const floods = await floodPhase(n * o.vmsPerHost, n, fleets, log);
  const reconnects = await fleets.reconnects();
  // The floods woke every link: the API is measured once they are idle again, as the idle
  // CPU is (ten thousand links going idle within a second each ping at once).
  await sleep(IDLE_AFTER_MS);
  // The profile, when asked for, covers the replies and what the proxy does meanwhile.
  const [api] = await Promise.all([
    apiLatency(proxy.call),
    profiled(proxy.inspector, o.profile, "api", 8000),
  ]);
  log(`API measured; ${reconnects} reconnects; stopping`);
  return {
    variant,
    hosts: n,
    vms: n * o.vmsPerHost,
    ...storm,
    ...base,
    ...idle,
    ...reports,
    ...floods,
    refusals: refusalCount(api.metrics),
    api: api.ms,
    apiBytes: api.bytes,
    reconnects,
  };
}

/** The proxy with no hosts. */
async function baseline(proxy: ProxyUnderTest, o: ScaleOptions) {
  await sleep(1000);
  const rssBase = rssBytes(proxy.pid);
  const mem = await jsMemory(proxy.call);
  const cpuIdleBase = await cpuShare(proxy.pid, o.idleSeconds);
  const apiBase = (await apiLatency(proxy.call)).ms;
  return { rssBase, heapBase: mem.heap, externalBase: mem.external, cpuIdleBase, apiBase };
}

/** How long after the storm hosts are idle: keepalive-idle (10 s, the default) and 2 s. */
const IDLE_AFTER_MS = 12_000;

/** CPU seconds of the processes running the simulated hosts so far. */
function workersCpu(proxy: ProxyUnderTest): number {
  return proxy.workerPids.reduce((s, pid) => s + cpuSeconds(pid), 0);
}

/**
 * A few hosts first, then the storm; the first ones must not miss keepalives meanwhile. They
 * carry a ring of frames meanwhile, so their links keep the busy keepalive (1 s).
 */
async function joinStorm(
  n: number,
  o: ScaleOptions,
  proxy: ProxyUnderTest,
  fleets: Fleets,
  log: Log,
) {
  const e = establishedCount(n);
  await fleets.join("established");
  await fleets.ring(true, 1500, "established");
  await sleep(2000);
  await fleets.health(proxy.keepaliveMs); // starts the watch afresh
  log(`${e} established; storm of ${n - e}`);
  const c0 = cpuSeconds(proxy.pid);
  const w0 = workersCpu(proxy);
  const storm = fleets.join("storm");
  await profiled(proxy.inspector, o.profile, "storm", 10_000);
  const joinMs = await storm;
  const joinProxyCpu = (cpuSeconds(proxy.pid) - c0) / (joinMs / 1000);
  const joinWorkerCpu = (workersCpu(proxy) - w0) / (joinMs / 1000);
  const during = await fleets.health(proxy.keepaliveMs);
  await fleets.ring(false, 0, "established");
  log(`joined in ${(joinMs / 1000).toFixed(1)} s; established: ${JSON.stringify(during)}`);
  return {
    joinS: joinMs / 1000,
    joinProxyCpu,
    joinWorkerCpu,
    missed: `${during.missed} / ${e}`,
    maxSilenceMs: during.maxSilenceMs,
    maxRttMs: during.maxRttMs,
  };
}

/**
 * Every host joined and silent: CPU and RSS as they are, then once the storm's garbage is
 * collected (V8 collects lazily, on helper threads that /proc counts and a profile of the
 * main thread does not; what is left is what the idle hosts hold). A link goes idle after
 * `keepalive-idle` (10 s) without traffic, and pings every second until then: the first
 * window starts once the storm's last hosts are idle.
 */
async function idlePhase(n: number, o: ScaleOptions, proxy: ProxyUnderTest, log: Log) {
  await sleep(IDLE_AFTER_MS);
  const cpuIdleSettling = await cpuShare(proxy.pid, o.idleSeconds);
  const rss = rssBytes(proxy.pid);
  const mem = await jsMemory(proxy.call);
  let rssGc = NaN;
  if (proxy.inspector) {
    await collectGarbage(proxy.inspector);
    await sleep(2000);
    rssGc = rssBytes(proxy.pid);
  }
  // The profile, when asked for, covers the measured window itself.
  const [cpuIdle] = await Promise.all([
    cpuShare(proxy.pid, o.idleSeconds),
    profiled(proxy.inspector, o.profile, "idle", o.idleSeconds * 1000),
  ]);
  if (o.heapCensus && proxy.inspector) {
    console.error(`  heap census of the idle proxy (${n} hosts): bytes per host by constructor`);
    for (const r of await heapCensus(proxy.inspector)) {
      const bytes = (r.bytes / n).toFixed(0).padStart(7);
      console.error(`    ${bytes} B/host ${(r.count / n).toFixed(1).padStart(6)}  ${r.name}`);
    }
  }
  const mib = (b: number) => (b / 1024 / 1024).toFixed(0);
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  log(
    `idle: cpu ${pct(cpuIdleSettling)}, rss ${mib(rss)} MiB; after a GC: cpu ${pct(cpuIdle)}, ` +
      `rss ${mib(rssGc)} MiB`,
  );
  return { cpuIdle, cpuIdleSettling, rss, rssGc, heap: mem.heap, external: mem.external };
}

/**
 * Every VM claims its address to one of the established VMs, which the proxy knows (a first
 * frame to an unknown MAC would flood), then a ring: every host reports every interval.
 */
async function reportPhase(
  vms: number,
  o: ScaleOptions,
  proxy: ProxyUnderTest,
  fleets: Fleets,
  log: Log,
) {
  const spreadMs = claimSpreadMs(vms);
  const claimProfile = profiled(proxy.inspector, o.profile, "claim", spreadMs + 2000);
  await fleets.claim(spreadMs);
  await sleep(spreadMs + 2000);
  await claimProfile;
  await fleets.ring(true, o.ringMs);
  await sleep(2500);
  const w0 = workersCpu(proxy);
  const cpuReports = await cpuShare(proxy.pid, o.reportSeconds);
  const hostsCpu = (workersCpu(proxy) - w0) / o.reportSeconds;
  await profiled(proxy.inspector, o.profile, "reports", 5000);
  const tickMs = await tickMsOf(proxy.call);
  await fleets.ring(false, 0);
  log(
    `reports: cpu ${(100 * cpuReports).toFixed(1)}% (the hosts' processes ` +
      `${(100 * hostsCpu).toFixed(0)}%), tick ${tickMs.toFixed(1)} ms`,
  );
  await sleep(1500);
  return { cpuReports, tickMs };
}

/** Frames delivered for one flood, one ARP for a known address, one for an unknown one. */
async function floodPhase(vms: number, n: number, fleets: Fleets, log: Log) {
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
  return { broadcast, arpKnown, arpUnknown };
}
