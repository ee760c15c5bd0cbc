/**
 * Patterns: a synthetic bulk-synchronous-parallel benchmark, one process per VM.
 *
 *     deno run --allow-net testbed/patterns.ts --rank 0 --hosts 10.88.0.11,10.88.0.21 \
 *       --topology ring --message-bytes 65536 --compute-ms 20 --iterations 100
 *
 * Every rank runs the same command but its `--rank`. Each iteration computes for
 * `--compute-ms` (busy), exchanges one message with each neighbour of `--topology`, then waits
 * at a barrier with all ranks. At the end the rank prints one JSON line on stdout (see
 * {@linkcode BspResult}; byte counts are payload bytes only). On any error or when
 * `--timeout-s` passes, it prints a message on stderr and exits 1.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type BspOptions, type BspResult, MAX_MESSAGE_BYTES, runBsp } from "./patterns/bsp.ts";
import { isTopology, TOPOLOGIES } from "./patterns/topology.ts";

/** Port every rank listens on unless `--port` or `--ports` says otherwise. */
export const DEFAULT_PORT = 7900;

/** Seconds a run may take, connecting included, unless `--timeout-s` says otherwise. */
export const DEFAULT_TIMEOUT_S = 120;

/** Command-line help. */
export const USAGE = `Usage: deno run --allow-net testbed/patterns.ts --rank R --hosts IP0,IP1,...
    --topology T --message-bytes B --compute-ms C --iterations N
    [--port ${DEFAULT_PORT} | --ports P0,P1,...] [--mesh ROWSxCOLS] [--timeout-s ${DEFAULT_TIMEOUT_S}]

  --topology   ${TOPOLOGIES.join(", ")}
  --ports      one port per rank (several ranks on one address, as in tests)
  --mesh       mesh shape (default: the squarest factorisation of the number of ranks)`;

/** A parsed command line. */
export interface PatternsConfig {
  /** What to run (no signal: the CLI adds its timeout). */
  run: Omit<BspOptions, "signal" | "listenHostname">;
  timeoutS: number;
}

/**
 * Parses and checks the flags; throws a `TypeError` or `RangeError` that names the bad flag.
 *
 * @example
 * ```ts
 * import { parsePatternsArgs } from "./patterns.ts";
 * const { run, timeoutS } = parsePatternsArgs([
 *   "--rank", "1", "--hosts", "10.0.0.1,10.0.0.2", "--topology", "ring",
 *   "--message-bytes", "1000", "--compute-ms", "5", "--iterations", "3",
 * ]);
 * if (run.ports.join() !== "7900,7900" || timeoutS !== 120) throw new Error("unexpected");
 * ```
 */
export function parsePatternsArgs(args: string[]): PatternsConfig {
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      rank: { type: "string" },
      hosts: { type: "string" },
      topology: { type: "string" },
      "message-bytes": { type: "string" },
      "compute-ms": { type: "string" },
      iterations: { type: "string" },
      port: { type: "string" },
      ports: { type: "string" },
      mesh: { type: "string" },
      "timeout-s": { type: "string" },
    },
  });
  const required = (name: keyof typeof values): string => {
    const v = values[name];
    if (v === undefined) throw new TypeError(`Cannot parse flags: --${name} is required`);
    return v;
  };

  const hosts = list(required("hosts"), "hosts");
  const size = hosts.length;
  const rank = integer(required("rank"), "rank", { min: 0, max: size - 1 });
  const topology = required("topology");
  if (!isTopology(topology)) {
    throw new RangeError(
      `Cannot parse --topology: "${topology}" is not one of ${TOPOLOGIES.join(", ")}`,
    );
  }
  if (values.port !== undefined && values.ports !== undefined) {
    throw new TypeError("Cannot parse flags: give --port or --ports, not both");
  }
  const ports = values.ports !== undefined
    ? list(values.ports, "ports").map((p) => integer(p, "ports", { min: 1, max: 65535 }))
    : hosts.map(() => integer(values.port ?? String(DEFAULT_PORT), "port", { min: 1, max: 65535 }));
  if (ports.length !== size) {
    throw new RangeError(`Cannot parse --ports: ${ports.length} ports for ${size} hosts`);
  }
  let mesh: BspOptions["mesh"];
  if (values.mesh !== undefined) {
    if (topology !== "mesh") throw new TypeError("Cannot parse --mesh: only for --topology mesh");
    const m = /^(\d+)x(\d+)$/.exec(values.mesh);
    if (!m || Number(m[1]) * Number(m[2]) !== size) {
      throw new RangeError(
        `Cannot parse --mesh: expected ROWSxCOLS with ROWS*COLS = ${size} ranks, got "${values.mesh}"`,
      );
    }
    mesh = { rows: Number(m[1]), cols: Number(m[2]) };
  }
  return {
    run: {
      rank,
      hosts,
      ports,
      topology,
      mesh,
      messageBytes: integer(required("message-bytes"), "message-bytes", {
        min: 0,
        max: MAX_MESSAGE_BYTES,
      }),
      computeMs: decimal(required("compute-ms"), "compute-ms", { min: 0 }),
      iterations: integer(required("iterations"), "iterations", { min: 1, max: 0xffff_fffe }),
    },
    timeoutS: decimal(values["timeout-s"] ?? String(DEFAULT_TIMEOUT_S), "timeout-s", {
      min: 0.001,
    }),
  };
}

/** Comma-separated, non-empty items. */
function list(text: string, flag: string): string[] {
  const items = text.split(",").map((s) => s.trim());
  if (items.some((s) => s === "")) {
    throw new RangeError(`Cannot parse --${flag}: empty item in "${text}"`);
  }
  return items;
}

function integer(text: string, flag: string, range: { min: number; max: number }): number {
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(n >= range.min && n <= range.max)) {
    throw new RangeError(
      `Cannot parse --${flag}: expected an integer in ${range.min}..${range.max}, got "${text}"`,
    );
  }
  return n;
}

function decimal(text: string, flag: string, range: { min: number }): number {
  const n = /^\d+(\.\d+)?$/.test(text) ? Number(text) : NaN;
  if (!(n >= range.min)) {
    throw new RangeError(
      `Cannot parse --${flag}: expected a number >= ${range.min}, got "${text}"`,
    );
  }
  return n;
}

/** Runs one rank; returns the exit code. Output: the result on stdout, errors on stderr. */
async function main(args: string[]): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(USAGE);
    return 0;
  }
  let config: PatternsConfig;
  try {
    config = parsePatternsArgs(args);
  } catch (e) {
    console.error(`patterns: ${e instanceof Error ? e.message : e}\n${USAGE}`);
    return 1;
  }
  const stop = new AbortController();
  const timer = setTimeout(
    () => stop.abort(new Error(`timed out after ${config.timeoutS} s`)),
    config.timeoutS * 1000,
  );
  try {
    const result: BspResult = await runBsp({ ...config.run, signal: stop.signal });
    console.log(JSON.stringify(result));
    return 0;
  } catch (e) {
    console.error(`patterns: ${e instanceof Error ? e.message : e}`);
    return 1;
  } finally {
    clearTimeout(timer);
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
