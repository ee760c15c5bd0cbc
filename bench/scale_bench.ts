/**
 * `deno task bench:scale`: how many hosts one proxy holds. N simulated hosts (one or more VMs
 * each, on in-memory devices) join one proxy at once, then idle, then carry a ring of small
 * frames (so every host reports traffic every interval), then one host floods and asks ARP
 * (the phases: testbed/scale_run.ts).
 *
 *     tls     a real proxy process (`main.ts --proxy`, the agent task's permissions), the hosts
 *             spread over `--workers` worker processes (testbed/scale_tls.ts), real TLS
 *     memory  proxy and hosts in this process on the memory network, system clock
 *             (testbed/scale_memory.ts)
 *
 * Every row stands beside a baseline from the same run: the proxy with no hosts (RSS, CPU,
 * API latency), a flood to every host (frames per broadcast, against which an ARP request for
 * a known address is compared), and for the tls variant the same N on the memory transport.
 * The proxy's RSS and CPU come from /proc/PID/status and /proc/PID/stat (the memory variant
 * reads its own process, hosts included). Planner and VTTIF times come from the pure cores
 * over the same sizes (scale_cores.ts), and the proxy's own last tick from /api/topology.
 *
 *     usage: deno run --allow-all bench/scale_bench.ts [--hosts 100,1000] [--variants tls,memory]
 *            [--workers 4] [--storm-nice 10] [--vms-per-host 1] [--ring-ms 1000]
 *            [--idle-seconds 5] [--report-seconds 5]
 *            [--vttif-vms 1024,100000] [--cpu-profile storm,idle,claim,reports,api] [--heap-census]
 *            [--profile-proxy V8-LOG-FILE]
 *
 * @module
 */

import { API_PATHS, API_TIMEOUT_MS } from "../testbed/scale_probe.ts";
import { memoryRun } from "../testbed/scale_memory.ts";
import type { ScaleOptions, ScaleRow } from "../testbed/scale_run.ts";
import { tlsRun } from "../testbed/scale_tls.ts";
import { plannerMs, vttifTickMs } from "./scale_cores.ts";

const KIB = 1024;
const MIB = 1024 * 1024;

/** Flags. */
interface Options extends ScaleOptions {
  hosts: number[];
  variants: ("tls" | "memory")[];
  vttifVms: number[];
  v8Profile: string | null;
}

function flagValue(name: string): string | null {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] ?? "" : null;
}

function listFlag(name: string, fallback: string): string[] {
  return (flagValue(name) ?? fallback).split(",").filter((s) => s !== "");
}

function fail(message: string): never {
  console.error(message);
  Deno.exit(2);
}

function numberFlag(name: string, fallback: number): number {
  const text = flagValue(name);
  if (text === null) return fallback;
  const v = Number(text);
  return v > 0 ? v : fail(`${name}: expected a positive number, got ${text || "nothing"}`);
}

/** `--storm-nice`: the storm workers' niceness, 0 to 19 (see testbed/scale_tls.ts). */
function niceFlag(): number {
  const text = flagValue("--storm-nice") ?? "10";
  const v = Number(text);
  return Number.isInteger(v) && v >= 0 && v <= 19
    ? v
    : fail(`--storm-nice: expected a whole number from 0 to 19, got ${text || "nothing"}`);
}

function options(): Options {
  const numbers = (name: string, d: string) =>
    listFlag(name, d).map((s) => {
      const v = Number(s.replace(/_/g, ""));
      return Number.isInteger(v) && v > 0
        ? v
        : fail(`${name}: expected whole numbers separated by commas, got ${s}`);
    });
  const variants = listFlag("--variants", "tls,memory");
  for (const v of variants) {
    if (v !== "tls" && v !== "memory") fail(`--variants: expected tls and/or memory, got ${v}`);
  }
  return {
    hosts: numbers("--hosts", "100,1000"),
    variants: variants as Options["variants"],
    workers: numberFlag("--workers", 4),
    stormNice: niceFlag(),
    vmsPerHost: numberFlag("--vms-per-host", 1),
    ringMs: numberFlag("--ring-ms", 1000),
    idleSeconds: numberFlag("--idle-seconds", 5),
    reportSeconds: numberFlag("--report-seconds", 5),
    vttifVms: numbers("--vttif-vms", "1024,100000"),
    profile: listFlag("--cpu-profile", ""),
    heapCensus: Deno.args.includes("--heap-census"),
    v8Profile: flagValue("--profile-proxy"),
  };
}

const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : "-");
const f0 = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : "-");
const msOrTimeout = (x: number) => (x === Infinity ? `> ${API_TIMEOUT_MS / 1000} s` : f1(x));
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

type Column = [string, (r: ScaleRow) => string];

function table(columns: Column[], rows: ScaleRow[]): void {
  console.log(`| ${columns.map(([h]) => h).join(" | ")} |`);
  console.log(`|---|${columns.slice(1).map(() => "---:").join("|")}|`);
  for (const r of rows) console.log(`| ${columns.map(([, f]) => f(r)).join(" | ")} |`);
}

const PER_HOST: Column[] = [
  ["variant", (r) => r.variant],
  ["hosts", (r) => String(r.hosts)],
  [
    "join storm s (proxy CPU; hosts' CPU; connections refused, by reason)",
    (r) =>
      `${f1(r.joinS)} (${pct(r.joinProxyCpu)}; ${
        r.variant.startsWith("memory") ? "same process" : pct(r.joinWorkerCpu)
      }; ${r.refusals.total}${r.refusals.byReason ? `: ${r.refusals.byReason}` : ""})`,
  ],
  [
    "established hosts missing a keepalive (slowest keepalive ms, longest silence ms)",
    (r) => `${r.missed} (${f0(r.maxRttMs)}, ${f0(r.maxSilenceMs)})`,
  ],
  ["proxy RSS MiB (no hosts)", (r) => `${f0(r.rss / MIB)} (${f0(r.rssBase / MIB)})`],
  [
    "RSS per idle host KiB (V8 heap, buffers)",
    (r) =>
      `${f0((r.rss - r.rssBase) / r.hosts / KIB)} (${f0((r.heap - r.heapBase) / r.hosts / KIB)}, ${
        f0((r.external - r.externalBase) / r.hosts / KIB)
      })`,
  ],
  ["the same after a full GC, KiB", (r) => f0((r.rssGc - r.rssBase) / r.hosts / KIB)],
  [
    "proxy CPU idle, after the storm's garbage is collected (right after the storm; no hosts)",
    (r) => `${pct(r.cpuIdle)} (${pct(r.cpuIdleSettling)}; ${pct(r.cpuIdleBase)})`,
  ],
  ["proxy CPU, every host reporting", (r) => pct(r.cpuReports)],
  ["frames per broadcast", (r) => String(r.broadcast)],
  ["ARP for a known address: frames (unknown address)", (r) => `${r.arpKnown} (${r.arpUnknown})`],
  ["VTTIF tick ms", (r) => f1(r.tickMs)],
  ["reconnects", (r) => String(r.reconnects)],
];

const API: Column[] = [
  ["variant", (r) => r.variant],
  ["hosts", (r) => String(r.hosts)],
  ...API_PATHS.map((p): Column => [
    `${p} ms (no hosts; reply KiB)`,
    (r) => `${msOrTimeout(r.api[p])} (${f1(r.apiBase[p])}; ${f0(r.apiBytes[p] / KIB)})`,
  ]),
];

/** The pure cores at the run's sizes, as a table. */
function printCores(o: Options): void {
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
    console.log(
      `| adaptation planner (ring, budget 0) | ${vms} VMs on ${n} hosts | ${
        f1(plannerMs(vms, o.vmsPerHost))
      } | - | - |`,
    );
  }
}

if (import.meta.main) {
  const o = options();
  const rows: ScaleRow[] = [];
  for (const n of o.hosts) {
    for (const v of o.variants) {
      console.error(`\n== ${v}, ${n} hosts ==`);
      rows.push(v === "tls" ? await tlsRun(n, o) : await memoryRun(n, o));
    }
  }
  console.log("");
  table(PER_HOST, rows);
  console.log("");
  table(API, rows);
  printCores(o);
}
