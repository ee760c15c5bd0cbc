/**
 * The namespace lab shared by root tests, the demo and the benchmarks.
 *
 *     LAN ns ──veth── proxy ns [br-lan + agent --proxy --tap] ──eth0──┐
 *                                                                     ├── underlay ns [bridge]
 *     VM ns ──veth── host ns i [br-vm + agent --join --tap] ──eth0────┘    (tbf-shapeable)
 *
 * Every namespace, interface and process is the lab's own: names start with the lab's
 * prefix, addresses (10.77.0.0/24 underlay, 10.88.0.0/24 overlay) exist only inside its
 * namespaces, and `close()` kills only the processes it started and deletes only its
 * namespaces, also after a failure.
 *
 *     lab_network.ts   builds the namespaces, bridges and veths from the options
 *     lab_process.ts   processes in namespaces: log files, waiting for a log line, stopping
 *     lab_shell.ts     running a command, failing with its stderr
 *
 * @module
 */

import { AGENT_RUN_FLAGS } from "../agent/run_flags.ts";
import { buildLabNetwork, type LabOptions, type Vm } from "./lab_network.ts";
import { type LabProcess, spawnLogged, stopProcess, waitForLog } from "./lab_process.ts";
import { type RunResult, sh } from "./lab_shell.ts";

// Re-exported: tests, benches and the demo import the lab's vocabulary from here.
export type { AttachMode, LabOptions, Vm } from "./lab_network.ts";
export type { LabProcess } from "./lab_process.ts";
export type { RunResult } from "./lab_shell.ts";

/** Faster VTTIF for lab runs: a phase change is declared in about a second. */
export const FAST_VTTIF: readonly string[] = [
  "--update-interval",
  "250ms",
  "--smoothing",
  "500ms",
  "--hysteresis",
  "500ms",
];

/** Faster failure detection for fault tests: dead links found in 1 s, reconnects within 1 s. */
export const FAST_FAILOVER: readonly string[] = [
  "--keepalive",
  "200ms",
  "--dead-after",
  "1s",
  "--reconnect-max",
  "1s",
];

const ROOT = new URL("..", import.meta.url).pathname;
/** Where each host's status API listens inside its namespace when `hostApi` is set. */
const HOST_API = "127.0.0.1:7802";
const PREFIX = "vnl";

/** Why lab tests cannot run here, or null when they can (root, ip, /dev/net/tun). */
export function labUnavailable(): string | null {
  if (Deno.build.os !== "linux") return "needs Linux network namespaces";
  if (Deno.uid() !== 0) return "needs root for network namespaces and TAP devices";
  try {
    Deno.statSync("/dev/net/tun");
  } catch {
    return "needs /dev/net/tun";
  }
  return null;
}

/** A running lab. */
export class Lab {
  readonly prefix: string;
  readonly dir: string;
  readonly opts: Required<LabOptions>;
  readonly vms: Vm[] = [];
  readonly namespaces: string[] = [];
  readonly processes: LabProcess[] = [];
  /** Overlay IP of the LAN namespace behind the proxy. */
  readonly lanIp = "10.88.0.250";
  /** The proxy's underlay address and port. */
  readonly proxyAddr = "10.77.0.1:7800";
  readonly #atClose: ((keepFiles: boolean) => Promise<void>)[] = [];
  #closed = false;

  private constructor(prefix: string, dir: string, opts: Required<LabOptions>) {
    this.prefix = prefix;
    this.dir = dir;
    this.opts = opts;
  }

  /** Namespace names. */
  get underlayNs(): string {
    return `${this.prefix}-ul`;
  }
  get proxyNs(): string {
    return `${this.prefix}-px`;
  }
  get lanNs(): string {
    return `${this.prefix}-lan`;
  }
  hostNs(i: number): string {
    return `${this.prefix}-h${i}`;
  }
  /** Underlay IP of host i (1-based). */
  hostIp(i: number): string {
    return `10.77.0.${10 + i}`;
  }
  /** The proxy's state directory (CA, join token). */
  get stateDir(): string {
    return `${this.dir}/proxy-state`;
  }

  /** Builds the namespaces and links; call {@linkcode close} in a `finally`. */
  static async create(options: LabOptions): Promise<Lab> {
    const opts: Required<LabOptions> = {
      vmsPerHost: 1,
      lan: true,
      attach: "tap",
      mtu: 1500,
      hostArgs: [],
      proxyArgs: [],
      hostApi: false,
      ...options,
    };
    if (opts.attach === "pcap" && opts.vmsPerHost !== 1) {
      throw new RangeError("Cannot build lab: pcap attachment supports one VM per host");
    }
    const prefix = `${PREFIX}${Math.random().toString(36).slice(2, 6)}`;
    const dir = await Deno.makeTempDir({ prefix: `${prefix}-` });
    const lab = new Lab(prefix, dir, opts);
    try {
      await buildLabNetwork(lab);
    } catch (e) {
      await lab.close();
      throw e;
    }
    return lab;
  }

  /** Shapes the egress of `ns`'s underlay interface with tbf. */
  async shape(ns: string, rateMbit: number): Promise<void> {
    await sh([
      "ip",
      "netns",
      "exec",
      ns,
      "tc",
      "qdisc",
      "replace",
      "dev",
      "eth0",
      "root",
      "tbf",
      "rate",
      `${rateMbit}mbit`,
      "burst",
      "64kb",
      "latency",
      "50ms",
    ]);
  }

  /** Runs a command inside namespace `ns` and waits for it. */
  exec(ns: string, cmd: string[], allowFail = true): Promise<RunResult> {
    return sh(["ip", "netns", "exec", ns, ...cmd], allowFail);
  }

  /** Starts a long-running process inside `ns`, its output going to a log file. */
  async spawn(name: string, ns: string, cmd: string[]): Promise<LabProcess> {
    const p = await spawnLogged(this.dir, name, ns, cmd);
    this.processes.push(p);
    return p;
  }

  /** The agent command line (deno run main.ts with the agent's permissions). */
  agentCommand(args: string[]): string[] {
    return [Deno.execPath(), "run", ...AGENT_RUN_FLAGS, `${ROOT}main.ts`, ...args];
  }

  /**
   * A CLI subcommand for the proxy, as its operator runs it: with the proxy's state dir, where
   * the CLI finds the API token.
   */
  proxyCli(args: string[]): string[] {
    return this.agentCommand([...args, "--state-dir", this.stateDir]);
  }

  /**
   * Runs `agent ARGS --json` against the proxy (inside its namespace) and parses the answer;
   * throws with the CLI's message when it fails.
   */
  // deno-lint-ignore no-explicit-any
  async agentJson(...args: string[]): Promise<any> {
    const r = await this.exec(this.proxyNs, this.proxyCli([...args, "--json"]));
    if (r.code !== 0) throw new Error(`Cannot run agent ${args.join(" ")}: ${r.stderr.trim()}`);
    return JSON.parse(r.stdout);
  }

  /**
   * Host `i`'s own status (`agent status --api ... --json` in its namespace); the lab must have
   * been created with `hostApi`.
   */
  // deno-lint-ignore no-explicit-any
  async hostStatus(i: number): Promise<any> {
    if (!this.opts.hostApi) {
      throw new Error("Cannot read a host's status: create the lab with hostApi");
    }
    const r = await this.exec(
      this.hostNs(i),
      // The host's API needs its token, which the CLI finds in the host's state dir.
      this.agentCommand([
        "status",
        "--api",
        HOST_API,
        "--json",
        "--state-dir",
        `${this.dir}/h${i}-state`,
      ]),
    );
    if (r.code !== 0) throw new Error(`Cannot read h${i}'s status: ${r.stderr.trim()}`);
    return JSON.parse(r.stdout);
  }

  /** Starts the proxy and waits until it listens. */
  async startProxy(extra: string[] = []): Promise<LabProcess> {
    const args = [
      "--proxy",
      "--listen",
      this.proxyAddr,
      "--state-dir",
      this.stateDir,
      "--mtu",
      String(this.opts.mtu),
      ...this.opts.proxyArgs,
      ...extra,
    ];
    if (this.opts.lan && this.opts.attach === "tap") {
      args.push("--tap", "vnet0", "--bridge", "br-lan");
    }
    if (this.opts.lan && this.opts.attach === "pcap") args.push("--pcap", "lan0");
    const p = await this.spawn("proxy", this.proxyNs, this.agentCommand(args));
    await this.waitForLog(p, /Proxy listening/, 20_000);
    return p;
  }

  /** Starts host i's agent and waits until it joined. */
  async startHost(i: number, extra: string[] = []): Promise<LabProcess> {
    const args = [
      "--join",
      this.proxyAddr,
      "--token-file",
      `${this.stateDir}/join.token`,
      "--name",
      `h${i}`,
      // Each host its own identity (key, rejoin credential), kept across its restarts.
      "--state-dir",
      `${this.dir}/h${i}-state`,
      "--mtu",
      String(this.opts.mtu),
      ...this.opts.hostArgs,
      ...extra,
    ];
    if (this.opts.attach === "tap") args.push("--tap", "vnet0", "--bridge", "br-vm");
    else args.push("--pcap", "v1");
    if (this.opts.hostApi) args.push("--api", HOST_API);
    const p = await this.spawn(`h${i}`, this.hostNs(i), this.agentCommand(args));
    await this.waitForLog(p, /Joined proxy/, 20_000);
    return p;
  }

  /**
   * Stops host `i`'s agent (SIGTERM) and starts it again with `extra` flags; the stopped
   * process leaves {@linkcode processes}, so "the agents" are always the running ones.
   */
  async restartHost(i: number, extra: string[] = []): Promise<LabProcess> {
    const old = this.processes.find((p) => p.name === `h${i}`);
    if (old) {
      await this.stop(old);
      this.processes.splice(this.processes.indexOf(old), 1);
    }
    return await this.startHost(i, extra);
  }

  /** Starts the proxy and every host. */
  async startAll(): Promise<void> {
    await this.startProxy();
    for (let i = 1; i <= this.opts.hosts; i++) await this.startHost(i);
  }

  /** Waits until the process's log matches `re` (counting only matches after `skip`). */
  waitForLog(p: LabProcess, re: RegExp, timeoutMs: number, skip = 0): Promise<string> {
    return waitForLog(p, re, timeoutMs, skip);
  }

  /**
   * Waits until a socket in namespace `ns` listens on TCP `port` (a server started in the
   * background is ready); throws after `timeoutMs`.
   */
  async waitListening(ns: string, port: number, timeoutMs = 10_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const r = await this.exec(ns, ["ss", "-Hltn", `sport = :${port}`]);
      if (r.code === 0 && r.stdout.trim() !== "") return;
      if (Date.now() > until) {
        throw new Error(
          `Cannot see anything listen on TCP ${port} in ${ns} within ${timeoutMs} ms`,
        );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Pings from a namespace; returns the number of replies and the median RTT (ms). */
  async ping(
    ns: string,
    ip: string,
    opts: { count?: number; intervalS?: number; timeoutS?: number } = {},
  ) {
    const r = await this.exec(ns, [
      "ping",
      "-n",
      "-q",
      "-c",
      String(opts.count ?? 3),
      "-i",
      String(opts.intervalS ?? 0.2),
      "-W",
      String(opts.timeoutS ?? 2),
      ip,
    ]);
    const rx = /(\d+) received/.exec(r.stdout);
    const rtt = /= [\d.]+\/([\d.]+)\//.exec(r.stdout);
    return {
      received: rx ? Number(rx[1]) : 0,
      avgMs: rtt ? Number(rtt[1]) : NaN,
      output: r.stdout,
    };
  }

  /** Pings until one reply arrives or `timeoutMs` passes; true on success. */
  async waitPing(ns: string, ip: string, timeoutMs = 10_000): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      if ((await this.ping(ns, ip, { count: 1, timeoutS: 1 })).received > 0) return true;
    }
    return false;
  }

  /** Stops one process with SIGTERM (SIGKILL after a grace period). */
  stop(p: LabProcess, graceMs = 3000): Promise<Deno.CommandStatus> {
    return stopProcess(p, graceMs);
  }

  /**
   * Has `cleanup` run when the lab closes, after its processes stopped and before its
   * namespaces go: for what is not in its process list, such as QEMU daemons that the proxy's
   * migration hook started. `keepFiles` is set when the lab keeps its logs.
   */
  atClose(cleanup: (keepFiles: boolean) => Promise<void>): void {
    this.#atClose.push(cleanup);
  }

  /** Kills the lab's processes and deletes its namespaces and files. Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const keepFiles = !!Deno.env.get("VNET_LAB_KEEP_LOGS");
    await Promise.all(this.processes.map((p) => this.stop(p, 2000).catch(() => {})));
    for (const cleanup of this.#atClose) {
      await cleanup(keepFiles).catch((e) => console.error(`Cannot clean up the lab: ${e}`));
    }
    for (const ns of this.namespaces.reverse()) {
      await sh(["ip", "netns", "del", ns], true);
    }
    if (!keepFiles) {
      await Deno.remove(this.dir, { recursive: true }).catch(() => {});
    }
  }

  /** The logs of all processes, for a failing test's message. */
  async logs(): Promise<string> {
    const parts = [];
    for (const p of this.processes) {
      parts.push(
        `--- ${p.name} ---\n${(await Deno.readTextFile(p.logPath).catch(() => "")).slice(-2000)}`,
      );
    }
    return parts.join("\n");
  }
}
