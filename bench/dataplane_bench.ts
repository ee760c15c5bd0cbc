/**
 * Data-plane benchmark: throughput and latency between two VMs on different hosts, through the
 * overlay, beside the raw underlay, kernel VXLAN, tinc 1.0 (switch mode, UDP and TCPOnly) and
 * the TypeScript floor (testbed/floor_relay.ts: the least any Deno data plane can cost here),
 * measured in the same run on the same lab (root only).
 *
 *     raw underlay   host 1 ns ──underlay bridge── host 2 ns            (no overlay at all)
 *     via proxy      VM 1 ─ TAP ─ agent h1 ═TLS═ proxy ═TLS═ agent h2 ─ TAP ─ VM 2
 *
 * For each path: iperf3 TCP (1 and 4 streams), ping RTT median and p99 (a ping every 10 ms, so
 * every daemon on the path wakes from idle for each; a lost ping counts as slower than any) and
 * average back to back (ping -f: the processing alone), pings lost, and the agents' CPU
 * seconds per GB moved and RSS. tinc runs over UDP and TCP only with its default cipher and
 * over UDP without encryption (its upper bound here), each row naming the cipher tinc's own log
 * reports. A transfer that fails stops the run (a baseline's row is left out, with the reason)
 * instead of printing a zero. Printed as a markdown table with ratios to the raw underlay,
 * and written to bench/out/dataplane.md.
 *
 *     usage: deno run --allow-all bench/dataplane_bench.ts [--seconds N] [--no-offload] [--rtt-only]
 *
 * `--rtt-only` skips iperf3 (throughput columns show "-"): a quick loop for latency work.
 *
 * @module
 */

import { FAST_VTTIF, Lab, type LabProcess } from "../testbed/lab.ts";
import { numberFlag, requireLab } from "./cli.ts";
import {
  hasTinc,
  probeTincCipher,
  startFloorRelay,
  startTinc,
  startVxlan,
  type TincOptions,
} from "../testbed/baselines.ts";
import { iperf } from "../testbed/iperf.ts";

/** One measured path. */
export interface PathResult {
  path: string;
  gbps1: number;
  gbps4: number;
  rttMedianMs: number;
  rttP99Ms: number;
  /** Average RTT of back-to-back pings (ping -f): processing without idle wake-ups. */
  rttBusyMs: number;
  /** CPU time of the daemons (summed) per back-to-back ping, in microseconds. */
  cpuUsPerPing: number;
  cpuSecPerGB: number | null;
  rssMiB: number | null;
  /** Pings lost: of the paced ones (percentiles), of the back-to-back ones. */
  lost: { paced: number; flood: number };
}

/** One iperf3 run: Gbit/s and bytes moved; throws (with iperf3's reason) when it failed. */
async function throughput(
  lab: Lab,
  fromNs: string,
  toNs: string,
  toIp: string,
  seconds: number,
  streams: number,
) {
  const r = await iperf(lab, { fromNs, toNs, toIp, seconds, streams });
  return { gbps: r.bitsPerSecond / 1e9, bytes: r.bytes };
}

/** Paced pings sent per path for the RTT percentiles. */
const PACED_PINGS = 200;

async function rtt(lab: Lab, fromNs: string, toIp: string, procs: LabProcess[] = []) {
  const r = await lab.exec(fromNs, [
    "ping",
    "-n",
    "-c",
    String(PACED_PINGS),
    "-i",
    "0.01",
    "-W",
    "1",
    toIp,
  ]);
  const times = [...r.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  // A lost ping is slower than any answered one: it counts at the top of the percentiles
  // (as Infinity, printed "lost") instead of vanishing from them.
  const lost = Math.max(0, PACED_PINGS - times.length);
  const all = [...times, ...Array(lost).fill(Infinity)].sort((a, b) => a - b);
  const at = (q: number) => all[Math.min(all.length - 1, Math.floor(q * all.length))];
  // Back to back (the next ping leaves when the reply is in): no daemon sleeps between
  // packets, so this is the processing alone, without the wake-ups from idle; the daemons'
  // CPU time per ping measures it in a form that scheduling noise barely moves.
  const before = await Promise.all(procs.map(usage));
  const flood = await lab.exec(fromNs, ["ping", "-f", "-c", String(FLOOD_PINGS), "-W", "1", toIp]);
  const cpuSec = cpuSpent(before, await Promise.all(procs.map(usage)));
  const avg = /rtt min\/avg\/max\/mdev = [\d.]+\/([\d.]+)\//.exec(flood.stdout);
  const floodReceived = Number(/(\d+) received/.exec(flood.stdout)?.[1] ?? 0);
  return {
    median: at(0.5),
    p99: at(0.99),
    busy: avg ? Number(avg[1]) : NaN,
    cpuUsPerPing: procs.length ? (cpuSec * 1e6) / FLOOD_PINGS : NaN,
    lost,
    floodLost: FLOOD_PINGS - floodReceived,
  };
}

/** The rows of the minimal synchronous relay (testbed/floor_relay.ts). */
function floorRow(tls: boolean): string {
  return `TypeScript floor: sync relay, ${tls ? "TLS by OpenSSL" : "plain TCP"}, no switch`;
}

/** Back-to-back pings per path: enough CPU time for /proc's 10 ms ticks to resolve. */
const FLOOD_PINGS = 5000;

/** CPU seconds (user + system) and RSS of a lab process, read from /proc. */
async function usage(p: LabProcess): Promise<{ cpuSec: number; rssMiB: number }> {
  // The lab runs `ip netns exec ... deno`: the agent is the child of the ip process's pid,
  // or the same pid once ip has exec'ed.
  const pid = p.child.pid;
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
  return { cpuSec: ticks / 100, rssMiB: rss };
}

/** CPU seconds the processes used between two samples of {@linkcode usage}, summed. */
function cpuSpent(before: { cpuSec: number }[], after: { cpuSec: number }[]): number {
  return after.reduce((sum, u, i) => sum + u.cpuSec - before[i].cpuSec, 0);
}

function fmt(n: number | null, digits = 2): string {
  if (n === Infinity) return "lost";
  return n === null || Number.isNaN(n) ? "-" : n.toFixed(digits);
}

/** Renders results as a markdown table with ratios to the first row. */
export function renderTable(rows: PathResult[]): string {
  const base = rows[0];
  // tinc's best encrypted single-stream mode is the yardstick of the speed targets; its
  // unencrypted row is the upper bound of what tinc can do here, shown beside it.
  const tincs = rows.filter((r) => r.path.startsWith("tinc") && !r.path.includes("no encryption"));
  const tinc = tincs.length ? tincs.reduce((a, b) => (b.gbps1 > a.gbps1 ? b : a)) : null;
  const lines = [
    "| path | TCP 1 stream Gbit/s | TCP 4 streams Gbit/s | x raw (1 stream) | x best tinc (1 stream) | RTT median ms | RTT p99 ms | RTT back to back ms | pings lost (paced / back to back) | CPU µs per ping | CPU s/GB | RSS MiB |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.path} | ${fmt(r.gbps1)} | ${fmt(r.gbps4)} | ${fmt(r.gbps1 / base.gbps1, 3)} | ` +
        `${tinc ? fmt(r.gbps1 / tinc.gbps1, 2) : "-"} | ${fmt(r.rttMedianMs, 3)} | ${
          fmt(r.rttP99Ms, 3)
        } | ${fmt(r.rttBusyMs, 3)} | ${r.lost.paced} / ${r.lost.flood} | ${
          fmt(r.cpuUsPerPing, 0)
        } | ` +
        `${fmt(r.cpuSecPerGB)} | ${fmt(r.rssMiB, 0)} |`,
    );
  }
  return lines.join("\n");
}

/** What every phase of the benchmark works with. */
interface Run {
  lab: Lab;
  rows: PathResult[];
  seconds: number;
  rttOnly: boolean;
  offload: boolean;
}

async function main() {
  requireLab("dataplane");
  const run: Run = {
    lab: await Lab.create({
      hosts: 2,
      lan: false,
      hostArgs: Deno.args.includes("--no-offload") ? ["--no-offload"] : [],
      // Adaptation starts off, so the first overlay row really goes through the proxy.
      proxyArgs: ["--no-adapt", ...FAST_VTTIF],
    }),
    rows: [],
    seconds: numberFlag("--seconds", 5),
    rttOnly: Deno.args.includes("--rtt-only"),
    offload: !Deno.args.includes("--no-offload"),
  };
  try {
    await underlayRow(run);
    await kernelAndTincRows(run);
    await floorRows(run);
    await overlayRows(run);
  } finally {
    await run.lab.close();
  }
  const table = renderTable(run.rows);
  console.log(table);
  if (run.rttOnly) return; // a partial table must not replace the README's full one
  await Deno.mkdir(new URL("./out/", import.meta.url), { recursive: true });
  await Deno.writeTextFile(new URL("./out/dataplane.md", import.meta.url), table + "\n");
}

/** The raw underlay, host to host, no overlay: the ceiling. */
async function underlayRow({ lab, rows, seconds, rttOnly }: Run): Promise<void> {
  console.error("bench: raw underlay (host to host, no overlay)...");
  const skip = { gbps: NaN, bytes: 0 };
  const u1 = rttOnly
    ? skip
    : await throughput(lab, lab.hostNs(1), lab.hostNs(2), lab.hostIp(2), seconds, 1);
  const u4 = rttOnly
    ? skip
    : await throughput(lab, lab.hostNs(1), lab.hostNs(2), lab.hostIp(2), seconds, 4);
  const ur = await rtt(lab, lab.hostNs(1), lab.hostIp(2));
  rows.push({
    path: "raw underlay",
    gbps1: u1.gbps,
    gbps4: u4.gbps,
    rttMedianMs: ur.median,
    rttP99Ms: ur.p99,
    rttBusyMs: ur.busy,
    cpuUsPerPing: ur.cpuUsPerPing,
    lost: { paced: ur.lost, flood: ur.floodLost },
    cpuSecPerGB: null,
    rssMiB: null,
  });
}

/** iperf3 1 and 4 streams and ping between the VMs; CPU and RSS of `procs`: one row. */
async function measure(run: Run, path: string, procs: LabProcess[]): Promise<void> {
  const { lab, seconds, rttOnly } = run;
  const [vm1, vm2] = lab.vms;
  const cpuBefore = await Promise.all(procs.map(usage));
  console.error(`bench: ${path}...`);
  const skip = { gbps: NaN, bytes: 0 };
  const o1 = rttOnly ? skip : await throughput(lab, vm1.ns, vm2.ns, vm2.ip, seconds, 1);
  const o4 = rttOnly ? skip : await throughput(lab, vm1.ns, vm2.ns, vm2.ip, seconds, 4);
  const cpuAfter = await Promise.all(procs.map(usage));
  const or = await rtt(lab, vm1.ns, vm2.ip, procs);
  const cpu = cpuSpent(cpuBefore, cpuAfter);
  const gb = (o1.bytes + o4.bytes) / 1e9;
  run.rows.push({
    path,
    gbps1: o1.gbps,
    gbps4: o4.gbps,
    rttMedianMs: or.median,
    rttP99Ms: or.p99,
    rttBusyMs: or.busy,
    cpuUsPerPing: or.cpuUsPerPing,
    lost: { paced: or.lost, flood: or.floodLost },
    cpuSecPerGB: procs.length && gb > 0 ? cpu / gb : null,
    rssMiB: procs.length ? Math.max(...cpuAfter.map((u) => u.rssMiB)) : null,
  });
}

/** The others, on the same lab before the agents start: kernel VXLAN and tinc. */
async function kernelAndTincRows(run: Run): Promise<void> {
  const { lab } = run;
  const [vm1, vm2] = lab.vms;
  const stopVxlan = await startVxlan(lab);
  await lab.waitPing(vm1.ns, vm2.ip);
  await measure(run, "kernel VXLAN (no encryption)", []);
  await stopVxlan();
  if (!await hasTinc()) {
    console.error("bench: tinc is not installed (apt-get install tinc); its rows are left out");
    return;
  }
  const modes: TincOptions[] = [
    { tcpOnly: false },
    { tcpOnly: true },
    { tcpOnly: false, cipher: "none" },
  ];
  for (const options of modes) {
    const transport = options.tcpOnly ? "TCPOnly" : "UDP";
    try {
      // The cipher as tinc itself reports it, from a verbose start with the same options
      // (verbose logging costs too much to measure with).
      const cipher = await probeTincCipher(lab, options);
      const tinc = await startTinc(lab, options);
      try {
        if (!await lab.waitPing(vm1.ns, vm2.ip, 15_000)) throw new Error("no ping crossed it");
        await measure(run, `tinc 1.0 switch mode, ${transport} (${cipher})`, tinc.daemons);
      } finally {
        await tinc.stop();
      }
    } catch (e) {
      console.error(`bench: tinc ${transport} left out: ${(e as Error).message}`);
    }
  }
}

/**
 * What any TypeScript data plane costs here: the gap between these and tinc is the
 * runtime's, the gap between them and vnet is ours.
 */
async function floorRows(run: Run): Promise<void> {
  const { lab, offload } = run;
  const [vm1, vm2] = lab.vms;
  for (const tls of [false, true]) {
    const row = floorRow(tls);
    let floor: Awaited<ReturnType<typeof startFloorRelay>> | null = null;
    try {
      floor = await startFloorRelay(lab, { offload, tls });
      if (!(await lab.waitPing(vm1.ns, vm2.ip, 15_000))) throw new Error("no ping crossed it");
      await measure(run, row, floor.daemons);
    } catch (e) {
      // The relays' last words say why (a stick that died mid-run, a missing libssl); a relay
      // that never came up has them at the end of the error.
      const lines = (e as Error).message.trim().split("\n");
      const tails = await Promise.all(
        (floor?.daemons ?? []).map((d) => Deno.readTextFile(d.logPath).catch(() => "")),
      );
      const words = [...tails.map((t) => t.trim().split("\n").at(-1)), lines.at(-1)]
        .filter((w) => w && w !== lines[0]);
      console.error(
        `bench: "${row}" left out: ${lines[0]}${words.length ? ` (${words.join("; ")})` : ""}`,
      );
    } finally {
      await floor?.stop();
    }
  }
}

/** vnet: through the proxy, then on a fast path, then with devices waited for on a thread. */
async function overlayRows(run: Run): Promise<void> {
  const { lab } = run;
  const [vm1, vm2] = lab.vms;
  await lab.startAll();
  await lab.waitPing(vm1.ns, vm2.ip);
  const agents = () => lab.processes.filter((p) => p.name === "proxy" || /^h\d$/.test(p.name));
  const mode = `TLS, superframes ${run.offload ? "on" : "off"}`;
  await measure(run, `via proxy (${mode})`, agents());

  // Adaptation on: the VM pair's traffic earns a fast path between the two hosts.
  const cli = (...args: string[]) => lab.exec(lab.proxyNs, lab.proxyCli(args), false);
  await cli("adapt", "set", "on");
  const awaitFastPath = async () => {
    const until = Date.now() + 30_000;
    while (Date.now() < until) {
      await lab.ping(vm1.ns, vm2.ip, { count: 20, intervalS: 0.01 });
      const paths = JSON.parse((await cli("paths", "--json")).stdout);
      if (paths.some((p: { path: string }) => p.path === "direct")) return;
    }
    throw new Error("Cannot measure the fast path: it did not come up within 30 s");
  };
  await awaitFastPath();
  await measure(run, `fast path (${mode})`, agents());

  // The latency lever, measured in the same run: the hosts restarted with the portable
  // wait (a poll on a worker thread) instead of the event-loop poller.
  for (let i = 1; i <= 2; i++) await lab.restartHost(i, ["--device-wait", "thread"]);
  await awaitFastPath();
  await measure(run, `fast path (${mode}), devices waited for on a worker thread`, agents());
}

if (import.meta.main) await main();
