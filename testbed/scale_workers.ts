/**
 * The worker processes of `bench:scale`'s tls variant, from the bench's side: each runs a
 * {@linkcode HostFleet} (testbed/scale_worker.ts) and answers one JSON line per command; the
 * group of them is the run's {@linkcode Fleets}.
 *
 *     WorkerProcess.call({cmd}) ──stdin──> scale_worker.ts ──stdout──> one JSON answer
 *     workerFleets([established, storm...]) ──> Fleets
 *
 * @module
 */

import type { WorkerArgs } from "./scale_worker.ts";
import type { Fleets } from "./scale_run.ts";

/** Longest a worker may take to answer one command (a 10,000-host join included). */
const WORKER_TIMEOUT_MS = 600_000;

/** A worker process and its command channel. */
export class WorkerProcess {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #lines: AsyncIterator<string>;
  #chain: Promise<unknown> = Promise.resolve();

  /**
   * Starts a worker for `args`; `nice`: its scheduling niceness (nice(1) execs deno, so the
   * pid is the worker's own).
   */
  constructor(args: WorkerArgs, nice = 0) {
    const script = new URL("./scale_worker.ts", import.meta.url).pathname;
    this.#child = new Deno.Command("nice", {
      args: [
        "-n",
        String(nice),
        Deno.execPath(),
        "run",
        "--allow-all",
        script,
        JSON.stringify(args),
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#writer = this.#child.stdin.getWriter();
    this.#lines = this.#child.stdout.pipeThrough(new TextDecoderStream()).pipeThrough(
      lineSplitter(),
    ).values();
  }

  get pid(): number {
    return this.#child.pid;
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

  /** Stops its hosts and waits for the process to end. */
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

/**
 * `workers` as the run's {@linkcode Fleets}: the first holds the established hosts (VMs
 * `0..knownVms`), the others the storm; `firsts[i]` is worker i's first host.
 */
export function workerFleets(
  workers: WorkerProcess[],
  firsts: number[],
  knownVms: number,
): Fleets {
  const workerOf = (h: number) => {
    let w = 0;
    while (w + 1 < workers.length && firsts[w + 1] <= h) w++;
    return workers[w];
  };
  const everyone = <T>(cmd: Record<string, unknown>) =>
    Promise.all(workers.map((w) => w.call<T>(cmd)));
  return {
    join: async (g) => {
      const t0 = performance.now();
      if (g === "established") await workers[0].call({ cmd: "join" });
      else await Promise.all(workers.slice(1).map((w) => w.call({ cmd: "join" })));
      return performance.now() - t0;
    },
    claim: async (overMs) => void await everyone({ cmd: "claim", knownVms, overMs }),
    ring: async (on, everyMs, group) =>
      void await (group === "established"
        ? workers[0].call({ cmd: "ring", on, everyMs, ringVms: knownVms })
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
}
