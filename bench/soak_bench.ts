/**
 * `deno task bench:soak` (root; not in CI): the overlay under a long mixed load with faults.
 *
 * Four hosts, adaptation on. For `--seconds` (default 600): VM 1 pings VM 2 every 10 ms the
 * whole time; in cycles, iperf3 between VMs, Patterns switching between ring and all-to-all
 * (topology changes), a fast-path link killed (ss -K), and once, in the middle, the proxy
 * killed and restarted. Reported: pings lost outside the injected outages (a fault's window
 * is from its injection to 2 s after; each lost ping is placed by its own send time), how long
 * hosts took to rejoin once the restarted proxy listened, and every agent's RSS at the start
 * and the end.
 *
 *     usage: deno run --allow-all bench/soak_bench.ts [--seconds 600]
 *
 * @module
 */

import { FAST_FAILOVER, FAST_VTTIF, Lab, type LabProcess } from "../testbed/lab.ts";
import { numberFlag, requireLab } from "./cli.ts";
import { runPatterns } from "../testbed/patterns_run.ts";
import { iperf } from "../testbed/iperf.ts";

const FAULT_GRACE_MS = 2000;
const PING_INTERVAL_MS = 10;

/** The time stamp at the start of an agent's log line ("2026-12-02 03:10:56.831 +00"). */
function logTime(line: string): number {
  const at = Date.parse(line.slice(0, 23).replace(" ", "T") + "Z");
  if (Number.isNaN(at)) throw new Error(`Cannot read the time of log line: ${line}`);
  return at;
}

async function rssMiB(p: LabProcess): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${p.child.pid}/status`).catch(() => "");
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

/** Anonymous (heap, buffers) RSS: what a leak grows; the rest is the mapped Deno binary. */
async function anonMiB(p: LabProcess): Promise<number> {
  const text = await Deno.readTextFile(`/proc/${p.child.pid}/smaps_rollup`).catch(() => "");
  return Number(/^Anonymous:\s+(\d+)/m.exec(text)?.[1] ?? 0) / 1024;
}

/** V8 heap and external (ArrayBuffer) MiB of host `i`, from its status API (with its token). */
async function jsMemory(
  lab: Lab,
  i: number,
): Promise<{ heap: number; used: number; external: number }> {
  try {
    const m = (await lab.hostStatus(i)).memory;
    return {
      heap: m.heapTotal / 1048576,
      used: m.heapUsed / 1048576,
      external: m.external / 1048576,
    };
  } catch {
    return { heap: NaN, used: NaN, external: NaN };
  }
}

/** One RSS sample of every agent. */
interface Sample {
  atS: number;
  rss: Record<string, number>;
  anon: Record<string, number>;
  /** Hosts only. */
  js: Record<string, { heap: number; used: number; external: number }>;
}

if (import.meta.main) {
  requireLab("soak");
  const seconds = numberFlag("--seconds", 600);
  const args = [...FAST_VTTIF, ...FAST_FAILOVER];
  // Each host serves its status on loopback in its namespace: the V8 heap and external
  // (ArrayBuffer) sizes tell JS growth from native growth.
  const lab = await Lab.create({
    hosts: 4,
    lan: false,
    proxyArgs: args,
    hostArgs: args,
    hostApi: true,
  });
  const faults: { what: string; at: number }[] = [];
  const rejoinMs: number[] = [];
  let iperfFailures = 0;
  const samples: Sample[] = [];
  const t0 = Date.now();
  let pingLog = "";
  try {
    await lab.startAll();
    const agents = () => lab.processes.filter((p) => p.name === "proxy" || /^h\d$/.test(p.name));
    const [vm1, vm2, vm3, vm4] = lab.vms;
    await lab.waitPing(vm1.ns, vm2.ip);
    const sample = async () => {
      const live = agents().filter((p) => p.child.pid);
      const rss = Object.fromEntries(
        await Promise.all(live.map(async (p) => [p.name, await rssMiB(p)])),
      );
      const anon = Object.fromEntries(
        await Promise.all(live.map(async (p) => [p.name, await anonMiB(p)])),
      );
      const js: Sample["js"] = {};
      for (let h = 1; h <= 4; h++) js[`h${h}`] = await jsMemory(lab, h);
      samples.push({ atS: (Date.now() - t0) / 1000, rss, anon, js });
      const jsText = (n: string) =>
        js[n]
          ? `, heap ${js[n].heap.toFixed(0)} (used ${js[n].used.toFixed(0)}), external ${
            js[n].external.toFixed(0)
          }`
          : "";
      console.error(
        "  MiB: " +
          Object.keys(rss).map((n) =>
            `${n} ${rss[n].toFixed(0)} (anonymous ${anon[n].toFixed(0)}${jsText(n)})`
          ).join("; "),
      );
    };
    await sample();
    const pinger = await lab.spawn("soak-ping", vm1.ns, [
      "ping",
      "-n",
      "-D",
      "-i",
      String(PING_INTERVAL_MS / 1000),
      vm2.ip,
    ]);
    const end = Date.now() + seconds * 1000;
    let restarted = false;
    let cycle = 0;
    let port = 8100;
    while (Date.now() < end) {
      cycle++;
      console.error(`cycle ${cycle}: iperf3, Patterns ring and all-to-all, a fast-path kill`);
      await iperf(lab, { fromNs: vm3.ns, toNs: vm4.ns, toIp: vm4.ip, seconds: 5 }).catch((e) => {
        iperfFailures++;
        console.error(`  ${(e as Error).message.split("\n")[0]}`);
      });
      for (const topology of ["ring", "all-to-all"]) {
        await runPatterns(lab, {
          topology,
          messageBytes: 256 * 1024,
          computeMs: 5,
          iterations: 30,
          port: port++,
        })
          .catch((e) =>
            console.error(`  patterns ${topology}: ${(e as Error).message.split("\n")[0]}`)
          );
      }
      faults.push({ what: "fast-path kill", at: Date.now() });
      await lab.exec(lab.hostNs(1), ["ss", "-K", "dst", lab.hostIp(2)]);
      if (!restarted && Date.now() > end - seconds * 500) {
        restarted = true;
        console.error("  proxy restart");
        const proxy = lab.processes.find((p) => p.name === "proxy" && p.child.pid)!;
        const killedAt = Date.now();
        faults.push({ what: "proxy restart", at: killedAt });
        proxy.child.kill("SIGKILL");
        await proxy.status;
        await new Promise((r) => setTimeout(r, 1000)); // the proxy stays down a while
        const proxyAgain = await lab.startProxy();
        // Rejoin time counts from the new proxy listening, not from the kill: the deliberate
        // second of downtime and the proxy's own start are not the hosts' doing.
        const listening = logTime(await lab.waitForLog(proxyAgain, /^.*Proxy listening.*$/m, 1000));
        for (let h = 1; h <= 4; h++) {
          const p = lab.processes.findLast((x) => x.name === `h${h}`)!;
          const line = await lab.waitForLog(p, /^.*Joined proxy.*$/m, 20_000, 1);
          rejoinMs.push(logTime(line) - listening);
        }
      }
      await new Promise((r) => setTimeout(r, 2000));
      await sample();
    }
    await lab.stop(pinger, 1000);
    pingLog = await Deno.readTextFile(pinger.logPath);
  } finally {
    await lab.close();
  }
  const replies = [...pingLog.matchAll(/^\[(\d+\.\d+)\] .*icmp_seq=(\d+)/gm)].map((m) => ({
    at: Number(m[1]) * 1000,
    seq: Number(m[2]),
  }));
  // Each lost ping was sent PING_INTERVAL_MS after the one before it: it is inside a fault
  // window only when its own send time is, however long the gap it belongs to lasts.
  let lostInFaults = 0;
  let lostOutside = 0;
  for (let k = 1; k < replies.length; k++) {
    for (let seq = replies[k - 1].seq + 1; seq < replies[k].seq; seq++) {
      const sentAt = replies[k - 1].at + (seq - replies[k - 1].seq) * PING_INTERVAL_MS;
      const inFault = faults.some((f) => sentAt >= f.at - 100 && sentAt <= f.at + FAULT_GRACE_MS);
      if (inFault) lostInFaults++;
      else lostOutside++;
    }
  }
  const sent = replies.length ? replies.at(-1)!.seq - replies[0].seq + 1 : 0;
  console.log(`| measure | value |`);
  console.log(`|---|---|`);
  console.log(`| duration | ${seconds} s, ${faults.length} faults injected |`);
  console.log(`| pings (VM 1 -> VM 2, every 10 ms) | ${sent} sent, ${replies.length} answered |`);
  console.log(`| lost inside fault windows (injection + ${FAULT_GRACE_MS} ms) | ${lostInFaults} |`);
  console.log(`| lost outside fault windows | ${lostOutside} |`);
  console.log(`| iperf3 transfers that failed | ${iperfFailures} |`);
  console.log(
    `| hosts rejoined, ms after the restarted proxy listened (it was down 1 s) | ${
      rejoinMs.map((m) => `${m} ms`).join(", ") || "-"
    } |`,
  );
  // Flat means: after warming up (the first half), RSS stops climbing. Start, middle and end,
  // and the largest value of the second half, per agent (the proxy restarts in the middle).
  const first = samples[0];
  const middle = samples[Math.floor(samples.length / 2)];
  const last = samples.at(-1)!;
  const secondHalf = samples.slice(Math.floor(samples.length / 2));
  const f = (v: number | undefined) => (v === undefined ? "-" : v.toFixed(0));
  for (const name of Object.keys(first.rss)) {
    const peak = Math.max(...secondHalf.map((x) => x.rss[name] ?? 0));
    console.log(
      `| RSS ${name} start -> middle -> end (second-half peak); at the end: anonymous, V8 heap, external | ` +
        `${f(first.rss[name])} -> ${f(middle.rss[name])} -> ${f(last.rss[name])} (${f(peak)}); ` +
        `${f(last.anon[name])}, ${f(last.js[name]?.heap)}, ${f(last.js[name]?.external)} MiB |`,
    );
  }
}
