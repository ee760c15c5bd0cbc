/**
 * Opening a rank's connections: listen, accept the expected peers and connect to the others,
 * all at once, because ranks start at different times and a rank must accept while it still
 * retries its own connections. Everything opened is owned by the run's {@linkcode Resources}
 * and closed when the run ends or fails, and {@linkcode Progress} says what a stuck rank was
 * waiting for.
 *
 * @module
 */

import {
  Channel,
  type ChannelValue,
  FrameStream,
  getU32,
  HELLO_BYTES,
  HELLO_MAGIC,
  messageOf,
  putU32,
} from "./bsp_frame.ts";

/** The framed connections of one rank. */
export interface Links {
  /** Data streams to the `sendTo` ranks. */
  send: FrameStream[];
  /** Data streams from the `receiveFrom` ranks. */
  receive: FrameStream[];
  /** Rank 0: one stream from each other rank; any other rank: its stream to rank 0. */
  barrier: FrameStream[];
}

/** Who connects where. */
export interface LinkPlan {
  rank: number;
  hosts: string[];
  ports: number[];
  sendTo: number[];
  receiveFrom: number[];
  listenHostname?: string;
}

/** What opening the links shares with `runBsp` (bsp.ts). */
export interface LinkContext {
  resources: Resources;
  progress: Progress;
  /** Aborted when the run ends, whether it succeeded, failed or was stopped. */
  signal: AbortSignal;
}

/** Everything a run must close; what is handed over after the run stopped is closed at once. */
export class Resources {
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
export async function openLinks(plan: LinkPlan, ctx: LinkContext): Promise<Links> {
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

/** What a rank is doing and waiting for, for the message of an abort. */
export class Progress {
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
