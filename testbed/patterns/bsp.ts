/**
 * One rank of a Patterns run: a bulk-synchronous-parallel loop over TCP.
 *
 *     listen ─► connect to sendTo peers, accept receiveFrom peers (retrying) ─► start barrier
 *       ─► iterations x [ compute (busy) ─► send ∥ receive ─► barrier ] ─► result
 *
 * Each connection opens with a hello from the connecting side, then carries frames:
 *
 *     hello   u32 magic "BSP1" | u32 rank of the connecting side | u32 channel (0 data, 1 barrier)
 *     frame   u32 iteration | u32 payload length | payload          (all big-endian)
 *
 * A data connection runs from a sender to a receiver and carries one frame per iteration, in
 * that direction only. Barrier connections join every other rank to rank 0: "done i" goes up
 * as an empty frame of iteration i, and once rank 0 has every "done i" (and finished its own
 * exchange) it answers "go i" the same way down. A frame of the wrong iteration or length is a
 * protocol violation and fails the rank loudly; a failing rank closes its connections, so its
 * peers fail too instead of waiting for the timeout.
 *
 * The loop allocates no buffer per iteration: one frame buffer is shared by all sends (its
 * header is rewritten before the sends start, and nothing rewrites it until they finish), and
 * each receiving stream reads payloads in chunks into one scratch buffer of its own.
 *
 * @module
 */

import { type MeshShape, neighbours, type Topology } from "./topology.ts";

/** Bytes of a frame header. */
export const HEADER_BYTES = 8;

/** Bytes of the hello that opens each connection. */
export const HELLO_BYTES = 12;

/** Largest message: the frame buffer is allocated whole, and the length field is a u32. */
export const MAX_MESSAGE_BYTES = 1 << 28;

/** "BSP1": tells a Patterns peer from anything else that connects to the port. */
const HELLO_MAGIC = 0x42535031;

/** Largest scratch buffer a receiving stream reads payloads into. */
const MAX_CHUNK_BYTES = 64 * 1024;

/** The two kinds of connection, as the hello names them. */
export const Channel = { DATA: 0, BARRIER: 1 } as const;

/** One of {@linkcode Channel}'s values. */
export type ChannelValue = typeof Channel[keyof typeof Channel];

/** Iteration number of the barrier before the first iteration (iterations count from 0). */
const START_BARRIER = 0xffff_ffff;

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

/** The two ends of a connection a {@linkcode FrameStream} needs: a `Deno.Conn`, or a fake. */
export interface ByteStream {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
}

/**
 * Writes a frame header (`iteration`, payload `length`) into the first 8 bytes of `target`.
 *
 * @example
 * ```ts
 * import { writeHeader } from "./bsp.ts";
 * const h = new Uint8Array(8);
 * writeHeader(h, { iteration: 2, length: 1000 });
 * if (h.join() !== "0,0,0,2,0,0,3,232") throw new Error("unexpected");
 * ```
 */
export function writeHeader(target: Uint8Array, header: { iteration: number; length: number }) {
  putU32(target, 0, header.iteration);
  putU32(target, 4, header.length);
}

/**
 * A connection to one peer, framed: sends whole buffers, and reads frames that must be the
 * expected iteration and length. Reads reuse the stream's own buffers.
 *
 * @example
 * ```ts
 * import { FrameStream, writeHeader } from "./bsp.ts";
 * const bytes = new Uint8Array(8 + 3);
 * writeHeader(bytes, { iteration: 0, length: 3 });
 * let at = 0;
 * const fake = {
 *   read: (p: Uint8Array) => {
 *     if (at === bytes.length) return Promise.resolve(null);
 *     const n = Math.min(p.length, bytes.length - at);
 *     p.set(bytes.subarray(at, at + n));
 *     at += n;
 *     return Promise.resolve(n);
 *   },
 *   write: (p: Uint8Array) => Promise.resolve(p.length),
 * };
 * await new FrameStream(fake, { peer: "rank 1" }).expect(0, 3);
 * ```
 */
export class FrameStream {
  /** Who is at the other end, for error messages ("rank 3"). */
  readonly peer: string;
  readonly #stream: ByteStream;
  readonly #header = new Uint8Array(HEADER_BYTES);
  #chunk: Uint8Array | undefined;

  constructor(stream: ByteStream, options: { peer: string }) {
    this.#stream = stream;
    this.peer = options.peer;
  }

  /** Writes all of `bytes`. */
  async send(bytes: Uint8Array): Promise<void> {
    try {
      for (let at = 0; at < bytes.length;) {
        at += await this.#stream.write(at === 0 ? bytes : bytes.subarray(at));
      }
    } catch (e) {
      throw new Error(`Cannot send to ${this.peer}: ${messageOf(e)}`, { cause: e });
    }
  }

  /**
   * Reads one frame and discards its payload; throws unless it is of `iteration` with a
   * payload of `length` bytes.
   */
  async expect(iteration: number, length: number): Promise<void> {
    const h = this.#header;
    await this.#readExact(h);
    const gotIteration = getU32(h, 0);
    const gotLength = getU32(h, 4);
    if (gotIteration !== iteration) {
      throw new Error(
        `Cannot receive from ${this.peer}: expected iteration ${iterationName(iteration)}, ` +
          `got ${iterationName(gotIteration)} (the ranks are out of step)`,
      );
    }
    if (gotLength !== length) {
      throw new Error(
        `Cannot receive from ${this.peer}: expected a ${length}-byte message in iteration ` +
          `${iterationName(iteration)}, got ${gotLength} bytes (do the ranks agree on the flags?)`,
      );
    }
    if (length === 0) return;
    const chunk = this.#chunk ??= new Uint8Array(Math.min(length, MAX_CHUNK_BYTES));
    for (let left = length; left > 0; left -= chunk.length) {
      await this.#readExact(left >= chunk.length ? chunk : chunk.subarray(0, left));
    }
  }

  /** Reads exactly `buf.length` bytes. */
  async readHello(buf: Uint8Array): Promise<void> {
    await this.#readExact(buf);
  }

  async #readExact(buf: Uint8Array): Promise<void> {
    let got = 0;
    while (got < buf.length) {
      let n: number | null;
      try {
        n = await this.#stream.read(got === 0 ? buf : buf.subarray(got));
      } catch (e) {
        throw new Error(`Cannot receive from ${this.peer}: ${messageOf(e)}`, { cause: e });
      }
      if (n === null) {
        throw new Error(
          `Cannot receive from ${this.peer}: connection closed after ${got} of ${buf.length} bytes`,
        );
      }
      got += n;
    }
  }
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

/** The framed connections of one rank. */
interface Links {
  /** Data streams to the `sendTo` ranks. */
  send: FrameStream[];
  /** Data streams from the `receiveFrom` ranks. */
  receive: FrameStream[];
  /** Rank 0: one stream from each other rank; any other rank: its stream to rank 0. */
  barrier: FrameStream[];
}

/** Who connects where. */
interface LinkPlan {
  rank: number;
  hosts: string[];
  ports: number[];
  sendTo: number[];
  receiveFrom: number[];
  listenHostname?: string;
}

/** What opening the links shares with {@linkcode runBsp}. */
interface LinkContext {
  resources: Resources;
  progress: Progress;
  /** Aborted when the run ends, whether it succeeded, failed or was stopped. */
  signal: AbortSignal;
}

/** Everything a run must close; what is handed over after the run stopped is closed at once. */
class Resources {
  readonly #open = new Set<{ close(): void }>();
  #closed = false;

  /** Takes `r` over, or closes it and throws when the run has already stopped. */
  own<T extends { close(): void }>(r: T): T {
    if (this.#closed) {
      closeQuietly(r);
      throw new Error("Cannot continue: the run has stopped");
    }
    this.#open.add(r);
    return r;
  }

  /** Closes `r` now. */
  release(r: { close(): void }): void {
    this.#open.delete(r);
    closeQuietly(r);
  }

  /** Closes everything (pending reads, writes and accepts reject) and refuses more. */
  closeAll(): void {
    this.#closed = true;
    for (const r of this.#open) closeQuietly(r);
    this.#open.clear();
  }
}

function closeQuietly(r: { close(): void }): void {
  try {
    r.close();
  } catch { /* already closed */ }
}

/**
 * Listens, accepts the expected peers and connects to the others, all at once: ranks start at
 * different times, so a rank must accept while it is still retrying its own connections.
 */
async function openLinks(plan: LinkPlan, ctx: LinkContext): Promise<Links> {
  const { rank, hosts, ports } = plan;
  const hostname = plan.listenHostname ?? "0.0.0.0";
  let listener: Deno.TcpListener;
  try {
    listener = ctx.resources.own(Deno.listen({ hostname, port: ports[rank] }));
  } catch (e) {
    throw new Error(`Cannot listen on ${hostname}:${ports[rank]}: ${messageOf(e)}`, { cause: e });
  }
  const awaitedData = new Set(plan.receiveFrom);
  const others = Array.from({ length: hosts.length - 1 }, (_, i) => i + 1);
  const awaitedBarrier = new Set(rank === 0 ? others : []);
  ctx.progress.stage = "connecting";
  ctx.progress.awaited = [awaitedData, awaitedBarrier];

  const accepting = acceptPeers(listener, [awaitedData, awaitedBarrier], ctx);
  const connect = (to: number, channel: ChannelValue) =>
    connectPeer({ rank, to, hostname: hosts[to], port: ports[to], channel }, ctx);
  const sending = Promise.all(plan.sendTo.map((to) => connect(to, Channel.DATA)));
  const barrierUp = rank === 0 ? Promise.resolve([]) : Promise.all([connect(0, Channel.BARRIER)]);
  const [accepted, send, up] = await Promise.all([accepting, sending, barrierUp]);
  return {
    send,
    receive: plan.receiveFrom.map((r) => accepted[Channel.DATA].get(r)!),
    barrier: rank === 0 ? others.map((r) => accepted[Channel.BARRIER].get(r)!) : up,
  };
}

/**
 * Accepts until every awaited rank has opened its channels, checking each hello; closes the
 * listener then. `awaited[channel]` holds the ranks still expected on that channel.
 */
async function acceptPeers(
  listener: Deno.TcpListener,
  awaited: Set<number>[],
  ctx: LinkContext,
): Promise<Map<number, FrameStream>[]> {
  const accepted = awaited.map(() => new Map<number, FrameStream>());
  const hello = new Uint8Array(HELLO_BYTES);
  while (awaited.some((s) => s.size > 0)) {
    const conn = ctx.resources.own(await listener.accept());
    conn.setNoDelay(true);
    const remote = conn.remoteAddr as Deno.NetAddr;
    const stream = new FrameStream(conn, { peer: `${remote.hostname}:${remote.port}` });
    await stream.readHello(hello);
    const from = getU32(hello, 4);
    const channel = getU32(hello, 8);
    if (getU32(hello, 0) !== HELLO_MAGIC || !awaited[channel]?.delete(from)) {
      throw new Error(
        `Cannot accept ${stream.peer}: not an awaited Patterns peer (hello ${
          [...hello].join(",")
        }; is another run using this port, or do the ranks disagree on --topology?)`,
      );
    }
    accepted[channel].set(from, new FrameStream(conn, { peer: `rank ${from}` }));
  }
  ctx.resources.release(listener);
  return accepted;
}

/** Connects to rank `to`, retrying until it listens, and says hello. */
async function connectPeer(
  target: { rank: number; to: number; hostname: string; port: number; channel: ChannelValue },
  ctx: LinkContext,
): Promise<FrameStream> {
  const { to, hostname, port } = target;
  const signal = ctx.signal;
  const where = `rank ${to} at ${hostname}:${port}`;
  ctx.progress.connecting.set(where, "no answer yet");
  let conn: Deno.TcpConn;
  for (let attempt = 0;; attempt++) {
    try {
      conn = await Deno.connect({ hostname, port, signal });
      break;
    } catch (e) {
      signal.throwIfAborted();
      // Any error may be transient here: the peer's namespace or agent may still be coming up.
      ctx.progress.connecting.set(where, messageOf(e));
    }
    await sleep(Math.min(200, 10 * 2 ** attempt), signal);
  }
  ctx.resources.own(conn);
  conn.setNoDelay(true);
  ctx.progress.connecting.delete(where);
  const hello = new Uint8Array(HELLO_BYTES);
  putU32(hello, 0, HELLO_MAGIC);
  putU32(hello, 4, target.rank);
  putU32(hello, 8, target.channel);
  const stream = new FrameStream(conn, { peer: `rank ${to}` });
  await stream.send(hello);
  return stream;
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

/** What a rank is doing and waiting for, for the message of an abort. */
class Progress {
  stage = "starting";
  /** Peers still being connected to, with the last error. */
  readonly connecting = new Map<string, string>();
  /** Per channel, the ranks that have not connected to us yet. */
  awaited: Set<number>[] = [];

  describe(): string {
    const parts = [this.stage];
    for (const [where, error] of this.connecting) {
      parts.push(`still connecting to ${where} (${error})`);
    }
    const missing = [...new Set(this.awaited.flatMap((s) => [...s]))].sort((a, b) => a - b);
    if (missing.length > 0) parts.push(`rank(s) ${missing.join(", ")} never connected`);
    return parts.join("; ");
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

function putU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 24;
  b[at + 1] = v >>> 16;
  b[at + 2] = v >>> 8;
  b[at + 3] = v;
}

function getU32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}

function iterationName(i: number): string {
  return i === START_BARRIER ? "start" : String(i);
}

function roundUs(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
