/**
 * `bench:scale`'s tls variant: a real proxy process (`main.ts --proxy`, run with the agent
 * task's permissions from deno.json, its inspector on for garbage collection and profiles),
 * and the hosts in `--workers` worker processes over real TLS on loopback.
 *
 *     deno run <agent task flags> main.ts --proxy ──log──> /tmp/vnet-scale-proxy-N.log
 *         ^ TLS                                     <── /proc/PID, the API, the inspector
 *     WorkerProcess x (1 established + workers storm), host i listening on 127.0.0.1:10000+i
 *
 * The simulated hosts stand for machines of their own, so they do not compete with the proxy
 * for what a machine of its own would give it: the storm's workers run at nice 10 (the proxy
 * first, the hosts on what it leaves; the established hosts' worker is not niced, so that
 * their keepalives still measure the proxy), and the hosts' state directories are on tmpfs
 * (/dev/shm), so their ten thousand synced writes do not queue in the disk's journal before
 * the proxy's. The proxy's state is on disk, as installed.
 *
 * @module
 */

import { formatAddress } from "../agent/config/types.ts";
import { apiClient } from "./api_client.ts";
import { sleep, slowCallsLogged } from "./scale_probe.ts";
import { establishedCount, measure, type ScaleOptions, type ScaleRow } from "./scale_run.ts";
import type { WorkerArgs } from "./scale_worker.ts";
import { workerFleets, WorkerProcess } from "./scale_workers.ts";

/** tmpfs for the simulated hosts' state when there is one, else the temp dir. */
function hostsDir(): string | undefined {
  try {
    return Deno.statSync("/dev/shm").isDirectory ? "/dev/shm" : undefined;
  } catch {
    return undefined;
  }
}

/** Where the proxy's inspector listens. */
const INSPECT_ADDRESS = "127.0.0.1:9239";

/**
 * The agent task's `deno run` arguments (its permissions and V8 flag) from deno.json, with the
 * inspector on; `v8Profile`: a file for V8's own sampling profiler (`node --prof-process`).
 */
function agentRunArgs(v8Profile: string | null): string[] {
  const root = new URL("../", import.meta.url).pathname;
  const tasks = JSON.parse(Deno.readTextFileSync(`${root}deno.json`)).tasks;
  const words = (tasks.agent as string).split(/\s+/);
  if (words[0] !== "deno") throw new Error("Cannot read the agent task: it does not run deno");
  const prof = v8Profile ? `,--prof,--no-logfile-per-isolate,--logfile=${v8Profile}` : "";
  return words.slice(1).flatMap((w) =>
    w === "main.ts"
      ? [`--inspect=${INSPECT_ADDRESS}`, `${root}main.ts`]
      : [w.startsWith("--v8-flags=") ? w + prof : w]
  );
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** A proxy process for `vms` VMs, its log in `logPath`; resolves once its API answers. */
async function startProxy(
  stateDir: string,
  vms: number,
  logPath: string,
  v8Profile: string | null,
) {
  const port = freePort();
  const apiPort = freePort();
  const bound = String(Math.max(65_536, 2 * vms));
  const args = [
    ...agentRunArgs(v8Profile),
    ...["--proxy", "--listen", `127.0.0.1:${port}`, "--api", `127.0.0.1:${apiPort}`],
    ...["--state-dir", stateDir, "--fast-paths", "0", "--max-macs", bound, "--max-vms", bound],
    // Every simulated host dials from 127.0.0.1: one source, which real hosts never share;
    // its share is everyone's, in flight and waiting.
    ...["--max-handshakes-per-source", "100000", "--log-level", "warning"],
  ];
  const logFile = await Deno.open(logPath, { write: true, create: true, truncate: true });
  const child = new Deno.Command(Deno.execPath(), { args, stdout: "null", stderr: "piped" })
    .spawn();
  const logged = child.stderr.pipeTo(logFile.writable).catch(() => {});
  const until = Date.now() + 20_000;
  while (true) {
    try {
      const token = Deno.readTextFileSync(`${stateDir}/api.token`);
      if (token && (await fetch(`http://127.0.0.1:${apiPort}/api/status`)).status === 401) break;
    } catch { /* not yet */ }
    if (Date.now() > until) throw new Error("Cannot start the proxy: no API after 20 s");
    await sleep(100);
  }
  return { child, port, apiPort, logged };
}

/** SIGTERM, then SIGKILL after 15 s. */
async function stopProxy(child: Deno.ChildProcess, n: number): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch { /* gone */ }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const exited = await Promise.race([
    child.status.then(() => true),
    new Promise<false>((r) => timer = setTimeout(() => r(false), 15_000)),
  ]).finally(() => clearTimeout(timer));
  if (!exited) {
    console.error(`[tls ${n}] the proxy did not stop within 15 s of SIGTERM: killed`);
    child.kill("SIGKILL");
    await child.status;
  }
}

/** Runs every phase with `n` hosts in worker processes against a proxy process. */
export async function tlsRun(
  n: number,
  o: ScaleOptions & { v8Profile: string | null },
): Promise<ScaleRow> {
  const stateRoot = await Deno.makeTempDir({ prefix: "vnet-scale-" });
  const vms = n * o.vmsPerHost;
  const stateDir = `${stateRoot}/proxy`;
  const hostsRoot = await Deno.makeTempDir({ prefix: "vnet-scale-hosts-", dir: hostsDir() });
  const logPath = `/tmp/vnet-scale-proxy-${n}.log`;
  const proxy = await startProxy(stateDir, vms, logPath, o.v8Profile);
  const workers: WorkerProcess[] = [];
  try {
    const token = Deno.readTextFileSync(`${stateDir}/join.token`).trim();
    const e = establishedCount(n);
    const per = Math.ceil((n - e) / o.workers);
    const args = (first: number, count: number): WorkerArgs => ({
      proxy: formatAddress({ hostname: "127.0.0.1", port: proxy.port }),
      token,
      firstHost: first,
      hosts: count,
      vmsPerHost: o.vmsPerHost,
      totalVms: vms,
      listenBase: 10_000,
      stateRoot: hostsRoot,
    });
    const firsts = [0];
    workers.push(new WorkerProcess(args(0, e)));
    for (let first = e; first < n; first += per) {
      firsts.push(first);
      workers.push(new WorkerProcess(args(first, Math.min(per, n - first)), o.stormNice));
    }
    return await measure("tls (proxy process)", n, o, {
      pid: proxy.child.pid,
      workerPids: workers.map((w) => w.pid),
      inspector: INSPECT_ADDRESS,
      call: slowCallsLogged(apiClient(proxy.apiPort, stateDir)),
      keepaliveMs: 1000,
    }, workerFleets(workers, firsts, e * o.vmsPerHost));
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await stopProxy(proxy.child, n);
    await proxy.logged;
    const lines = (await Deno.readTextFile(logPath)).split("\n").filter((l) => l).length;
    console.error(`[tls ${n}] proxy log: ${logPath} (${lines} lines)`);
    await Deno.remove(stateRoot, { recursive: true });
    await Deno.remove(hostsRoot, { recursive: true });
  }
}
