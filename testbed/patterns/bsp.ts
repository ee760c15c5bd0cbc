/**
 * One rank of a Patterns run: a bulk-synchronous-parallel loop over TCP.
 *
 *     listen ─► connect to sendTo peers, accept receiveFrom peers (retrying) ─► start barrier
 *       ─► iterations x [ compute (busy) ─► send ∥ receive ─► barrier ] ─► result
 *
 *     bsp_frame.ts   the hello and frame bytes, and the framed stream that checks them
 *     bsp_links.ts   opening the connections, owning them, and what a stuck rank waits for
 *
 * A data connection runs from a sender to a receiver and carries one frame per iteration, in
 * that direction only. Barrier connections join every other rank to rank 0: "done i" goes up
 * as an empty frame of iteration i, and once rank 0 has every "done i" (and finished its own
 * exchange) it answers "go i" the same way down. A failing rank closes its connections, so its
 * peers fail too instead of waiting for the timeout.
 *
 * The loop allocates no buffer per iteration: one frame buffer is shared by all sends (its
 * header is rewritten before the sends start, and nothing rewrites it until they finish), and
 * each receiving stream reads payloads into one scratch buffer of its own.
 *
 * @module
 */

import {
  type FrameStream,
  HEADER_BYTES,
  messageOf,
  START_BARRIER,
  writeHeader,
} from "./bsp_frame.ts";
import { openLinks, Progress, Resources } from "./bsp_links.ts";
import { type MeshShape, neighbours, type Topology } from "./topology.ts";

// Re-exported: the wire format's vocabulary, which tests and the runner import from here.
export {
  type ByteStream,
  Channel,
  type ChannelValue,
  FrameStream,
  HEADER_BYTES,
  HELLO_BYTES,
  writeHeader,
} from "./bsp_frame.ts";

/** Largest message: the frame buffer is allocated whole, and the length field is a u32. */
export const MAX_MESSAGE_BYTES = 1 << 28;

/** What a rank runs. */
export interface BspOptions {
  /** This rank, `0..hosts.length - 1`. */
  rank: number;
  /** Address of every rank, by rank; its length is the run's size. */
  hosts: string[];
  /** Port every rank listens on, by rank (same length as `hosts`). */
  ports: number[];
  topology: Topology;
  /** Mesh shape for the `mesh` topology; default the squarest one. */
  mesh?: MeshShape;
  /** Payload bytes of each message. */
  messageBytes: number;
  /** Busy CPU time per iteration before the exchange. */
  computeMs: number;
  iterations: number;
  /** Address to listen on; default every interface. */
  listenHostname?: string;
  /** Stops the run: connections close and the run rejects with the reason and what it awaited. */
  signal?: AbortSignal;
}

/** The result a rank prints, one JSON line. */
export interface BspResult {
  rank: number;
  topology: Topology;
  size: number;
  iterations: number;
  messageBytes: number;
  computeMs: number;
  /** From the end of the start barrier to the end of the last iteration's barrier. */
  totalMs: number;
  /** Per iteration: compute, exchange and barrier. */
  iterationMs: number[];
  /** Payload bytes sent to neighbours (headers, hellos and barrier frames are not counted). */
  bytesSent: number;
  /** Payload bytes received from neighbours (counted like `bytesSent`). */
  bytesReceived: number;
}

/**
 * Spins the CPU for `ms` milliseconds. A compute phase models CPU work, so it must occupy a
 * core (and delay this rank's timers and I/O) as real work does; a sleep would yield it.
 * Returns a value derived from the work so that the loop cannot be optimised away.
 *
 * @example
 * ```ts
 * import { busyCompute } from "./bsp.ts";
 * const t0 = performance.now();
 * busyCompute(2);
 * if (performance.now() - t0 < 2) throw new Error("too short");
 * ```
 */
export function busyCompute(ms: number): number {
  const until = performance.now() + ms;
  let x = 1;
  while (performance.now() < until) {
    for (let k = 0; k < 256; k++) x = Math.imul(x, 1103515245) + 12345 | 0;
  }
  return x;
}

/**
 * Runs one rank to the end: connects, runs `iterations` BSP iterations in step with the other
 * ranks, closes its connections and returns its measurements. Rejects on a protocol error, a
 * lost peer or an abort of `signal`, naming what it was waiting for.
 *
 * @example
 * ```ts
 * import { runBsp } from "./bsp.ts";
 * // A run of one rank has no peers: compute and (trivial) barriers only.
 * const r = await runBsp({
 *   rank: 0,
 *   hosts: ["127.0.0.1"],
 *   ports: [0],
 *   listenHostname: "127.0.0.1",
 *   topology: "ring",
 *   messageBytes: 100,
 *   computeMs: 1,
 *   iterations: 2,
 * });
 * if (r.iterationMs.length !== 2 || r.bytesSent !== 0) throw new Error("unexpected");
 * ```
 */
export async function runBsp(options: BspOptions): Promise<BspResult> {
  const { rank, hosts, ports, topology, messageBytes, computeMs, iterations, signal } = options;
  const size = hosts.length;
  if (ports.length !== size) {
    throw new RangeError(`Cannot run rank ${rank}: ${size} hosts but ${ports.length} ports`);
  }
  if (!Number.isInteger(messageBytes) || messageBytes < 0 || messageBytes > MAX_MESSAGE_BYTES) {
    throw new RangeError(
      `Cannot run rank ${rank}: messageBytes must be an integer in 0..${MAX_MESSAGE_BYTES}`,
    );
  }
  if (!Number.isInteger(iterations) || iterations < 1 || iterations >= START_BARRIER) {
    throw new RangeError(`Cannot run rank ${rank}: iterations must be an integer >= 1`);
  }
  const { sendTo, receiveFrom } = neighbours(topology, rank, size, { mesh: options.mesh });
  signal?.throwIfAborted();

  // Stops everything this run started, on the caller's abort and also when the run ends or
  // fails: a retry loop or a connection must not outlive the run.
  const stop = new AbortController();
  const resources = new Resources();
  const progress = new Progress();
  const onAbort = () => stop.abort(signal!.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  stop.signal.addEventListener("abort", () => resources.closeAll(), { once: true });
  try {
    const links = await openLinks(
      { rank, hosts, ports, sendTo, receiveFrom, listenHostname: options.listenHostname },
      { resources, progress, signal: stop.signal },
    );
    const control = new Uint8Array(HEADER_BYTES);
    progress.stage = "waiting at the start barrier";
    await barrier(rank, links.barrier, START_BARRIER, control);

    const frame = new Uint8Array(HEADER_BYTES + messageBytes).fill(0x5a, HEADER_BYTES);
    const iterationMs: number[] = [];
    let bytesSent = 0;
    let bytesReceived = 0;
    const started = performance.now();
    for (let i = 0; i < iterations; i++) {
      const t0 = performance.now();
      progress.stage = `running iteration ${i}`;
      busyCompute(computeMs);
      writeHeader(frame, { iteration: i, length: messageBytes });
      const exchange: Promise<void>[] = [];
      for (const out of links.send) exchange.push(out.send(frame));
      for (const from of links.receive) exchange.push(from.expect(i, messageBytes));
      await Promise.all(exchange);
      bytesSent += messageBytes * links.send.length;
      bytesReceived += messageBytes * links.receive.length;
      await barrier(rank, links.barrier, i, control);
      iterationMs.push(roundUs(performance.now() - t0));
    }
    const totalMs = roundUs(performance.now() - started);
    return {
      rank,
      topology,
      size,
      iterations,
      messageBytes,
      computeMs,
      totalMs,
      iterationMs,
      bytesSent,
      bytesReceived,
    };
  } catch (e) {
    if (signal?.aborted) {
      throw new Error(
        `Cannot finish rank ${rank}: ${messageOf(signal.reason)} while ${progress.describe()}`,
        { cause: signal.reason },
      );
    }
    throw e;
  } finally {
    signal?.removeEventListener("abort", onAbort);
    stop.abort(new Error("the run has ended"));
  }
}

/**
 * Waits until every rank has reached this barrier. Rank 0 collects "done" from every other
 * rank, then answers "go" to all; the others send "done" and wait for "go".
 */
async function barrier(
  rank: number,
  streams: FrameStream[],
  iteration: number,
  control: Uint8Array,
): Promise<void> {
  writeHeader(control, { iteration, length: 0 });
  if (rank === 0) {
    await Promise.all(streams.map((s) => s.expect(iteration, 0)));
    await Promise.all(streams.map((s) => s.send(control)));
  } else {
    await streams[0].send(control);
    await streams[0].expect(iteration, 0);
  }
}

function roundUs(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
