/**
 * Application phases on the lab: every VM sends steady traffic to the peers a pattern gives it
 * (testbed/traffic.ts), and the proxy's inferred topology is polled through the real CLI.
 * Shared by the VTTIF lab test and the reaction-time benchmark.
 *
 * @module
 */

import type { Lab, LabProcess } from "./lab.ts";
import type { TopologySnapshot } from "../proxy/vttif_service.ts";

const TRAFFIC = new URL("./traffic.ts", import.meta.url).pathname;

/** Peers of VM i among n VMs. */
export type PeersOf = (i: number, n: number) => number[];

/** Ring neighbours. */
export const ringPeers: PeersOf = (i, n) => [(i + 1) % n, (i + n - 1) % n];

/** Everyone else. */
export const allPeers: PeersOf = (i, n) =>
  Array.from({ length: n }, (_, j) => j).filter((j) => j !== i);

/** A running phase: its generators. */
export class Phase {
  readonly #procs: LabProcess[];
  readonly #lab: Lab;
  /** When the generators were started (ms since epoch). */
  readonly startedAt: number;

  private constructor(lab: Lab, procs: LabProcess[], startedAt: number) {
    this.#lab = lab;
    this.#procs = procs;
    this.startedAt = startedAt;
  }

  /** Starts one generator per VM; each sends `kbps` to each of its peers for `seconds`. */
  static async start(
    lab: Lab,
    name: string,
    peersOf: PeersOf,
    options: { kbps?: number; seconds?: number } = {},
  ): Promise<Phase> {
    const vms = lab.vms;
    const startedAt = Date.now();
    const procs = await Promise.all(vms.map((vm, i) =>
      lab.spawn(`traffic-${name}-${i}`, vm.ns, [
        Deno.execPath(),
        "run",
        "--allow-net",
        TRAFFIC,
        "--to",
        peersOf(i, vms.length).map((j) => vms[j].ip).join(","),
        "--kbps",
        String(options.kbps ?? 4000),
        "--seconds",
        String(options.seconds ?? 60),
      ])
    ));
    return new Phase(lab, procs, startedAt);
  }

  /** Stops the generators. */
  async stop(): Promise<void> {
    await Promise.all(this.#procs.map((p) => this.#lab.stop(p, 1000)));
  }
}

/** The proxy's topology (`agent topology --json`). */
export function topology(lab: Lab): Promise<TopologySnapshot> {
  return lab.agentJson("topology");
}

/**
 * Polls the topology until `done` accepts it and returns that one; throws after `timeoutMs`
 * with what the proxy inferred last, so no caller can carry on from the wrong state.
 */
export async function waitTopology(
  lab: Lab,
  done: (t: TopologySnapshot) => boolean,
  timeoutMs: number,
  what = "the awaited topology",
): Promise<TopologySnapshot> {
  const until = Date.now() + timeoutMs;
  let t = await topology(lab);
  while (!done(t)) {
    if (Date.now() > until) {
      throw new Error(
        `Cannot see ${what} within ${timeoutMs} ms: the proxy infers ${
          JSON.stringify(t.classification)
        }`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
    t = await topology(lab);
  }
  return t;
}
