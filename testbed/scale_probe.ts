/**
 * What `bench:scale` reads from a proxy under test: its CPU and RSS from /proc, its API's
 * latency and reply sizes, a few counters, and (through its inspector) where its CPU goes.
 *
 *     /proc/PID/stat, /proc/PID/status ──> cpuSeconds, rssBytes, cpuShare
 *     the control API ──> apiLatency, jsMemory, tickMsOf, refusalCount(/metrics)
 *     the inspector ──> profiled (bench/heap_census.ts)
 *
 * @module
 */

import { cpuProfile } from "./inspector.ts";

/** The API paths measured, `/metrics` last (it may be slow at scale). */
/**
 * The replies measured: the whole lists, a page of each as `agent status` and `agent vms`
 * read them (proxy/cli/commands.ts LIST_PAGE), and the summary the live page reads.
 */
export const API_PATHS = [
  "/api/status",
  "/api/status?offset=0&limit=5000",
  "/api/status?limit=0",
  "/api/topology",
  "/api/vms",
  "/api/vms?offset=0&limit=5000",
  "/metrics",
];

/** Longest the bench waits for one API reply. */
export const API_TIMEOUT_MS = 120_000;

/** A request to the proxy's API (the path with its query). */
export type ApiCall = (path: string) => Promise<Response>;

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The median of `xs` (NaN when empty). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

/** CPU seconds (user + system) a process has used. */
export function cpuSeconds(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // Fields after the command name (which may hold spaces) in parentheses.
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100; // utime, stime (fields 14, 15); USER_HZ 100
}

/** Resident set size in bytes. */
export function rssBytes(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
}

/** Share of one core `pid` used over `seconds` from now. */
export async function cpuShare(pid: number, seconds: number): Promise<number> {
  const c0 = cpuSeconds(pid);
  const t0 = performance.now();
  await sleep(seconds * 1000);
  return (cpuSeconds(pid) - c0) / ((performance.now() - t0) / 1000);
}

/**
 * Median latency (ms) and size of each API path over `n` requests (one when the first takes
 * over two seconds: a reply that slow holds the proxy's event loop, and hosts' keepalives with
 * it; Infinity when none came). `/metrics`' text is kept for the counters read from it.
 */
export async function apiLatency(
  call: ApiCall,
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

/** The proxy's own view of its memory (`/api/status`): V8 heap in use and ArrayBuffers. */
export async function jsMemory(call: ApiCall): Promise<{ heap: number; external: number }> {
  const m = (await (await call("/api/status?limit=0")).json()).memory as Deno.MemoryUsage;
  return { heap: m.heapUsed, external: m.external };
}

/**
 * `call` with the bench's timeout, saying so on stderr when a reply takes over half a second
 * (the proxy stalled).
 */
export function slowCallsLogged(
  call: (path: string, init?: RequestInit) => Promise<Response>,
): ApiCall {
  return async (path) => {
    const t0 = performance.now();
    const r = await call(path, { signal: AbortSignal.timeout(API_TIMEOUT_MS) });
    const body = await r.arrayBuffer();
    const ms = performance.now() - t0;
    if (ms > 500) console.error(`  slow API reply: ${path} took ${ms.toFixed(0)} ms`);
    return new Response(body, { status: r.status, headers: r.headers });
  };
}

/** Connections refused before admission, from /metrics' text: the total and the count per reason. */
export function refusalCount(metrics: string): { total: number; byReason: string } {
  const by: string[] = [];
  let total = 0;
  for (
    const m of metrics.matchAll(/^vnet_connection_refusals_total\{reason="([^"]*)"\} (\S+)$/gm)
  ) {
    if (Number(m[2]) === 0) continue;
    total += Number(m[2]);
    by.push(`${m[1]} ${m[2]}`);
  }
  return { total, byReason: by.join(", ") };
}

/** The proxy's last VTTIF tick, ms (from /api/topology: /metrics may be slow at scale). */
export async function tickMsOf(call: ApiCall): Promise<number> {
  return ((await (await call("/api/topology")).json()) as { lastTickMs: number }).lastTickMs;
}

/**
 * When `phases` names `phase` and the proxy has an inspector: where its CPU goes for `ms`
 * from now (self time by function, on stderr).
 */
export async function profiled(
  inspector: string | undefined,
  phases: readonly string[],
  phase: string,
  ms: number,
): Promise<void> {
  if (!inspector || !phases.includes(phase)) return;
  const rows = await cpuProfile(inspector, ms, Infinity);
  const at = (x: number) => x.toFixed(0).padStart(6);
  console.error(`  where the proxy's CPU goes (${phase}, over ${ms / 1000} s; self, total ms):`);
  for (const r of rows.slice(0, 40)) {
    console.error(`    ${at(r.selfMs)} ${at(r.totalMs)}  ${r.name}`);
  }
  console.error("  the same, by total ms (what each task costs with what it calls):");
  const byTotal = rows.slice().sort((a, b) => b.totalMs - a.totalMs);
  for (const r of byTotal.slice(0, 25)) console.error(`    ${at(r.totalMs)}  ${r.name}`);
}
