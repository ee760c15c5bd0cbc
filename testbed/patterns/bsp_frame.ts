/**
 * The bytes a Patterns rank exchanges, and a framed connection that reads them. Each
 * connection opens with a hello from the connecting side, then carries frames:
 *
 *     hello   u32 magic "BSP1" | u32 rank of the connecting side | u32 channel (0 data, 1 barrier)
 *     frame   u32 iteration | u32 payload length | payload          (all big-endian)
 *
 * A frame of the wrong iteration or length is a protocol violation and fails the rank loudly.
 * Reads allocate nothing per frame: each stream reads payloads in chunks into one scratch
 * buffer of its own. The loop that uses these is bsp.ts; the connections are opened in
 * bsp_links.ts.
 *
 * @module
 */

/** Bytes of a frame header. */
export const HEADER_BYTES = 8;

/** Bytes of the hello that opens each connection. */
export const HELLO_BYTES = 12;

/** "BSP1": tells a Patterns peer from anything else that connects to the port. */
export const HELLO_MAGIC = 0x42535031;

/** Largest scratch buffer a receiving stream reads payloads into. */
const MAX_CHUNK_BYTES = 64 * 1024;

/** The two kinds of connection, as the hello names them. */
export const Channel = { DATA: 0, BARRIER: 1 } as const;

/** One of {@linkcode Channel}'s values. */
export type ChannelValue = typeof Channel[keyof typeof Channel];

/** Iteration number of the barrier before the first iteration (iterations count from 0). */
export const START_BARRIER = 0xffff_ffff;

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
 * import { writeHeader } from "./bsp_frame.ts";
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
 * import { FrameStream, writeHeader } from "./bsp_frame.ts";
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

/** Writes `v` big-endian at `at`. */
export function putU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 24;
  b[at + 1] = v >>> 16;
  b[at + 2] = v >>> 8;
  b[at + 3] = v;
}

/** The big-endian u32 at `at`. */
export function getU32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}

function iterationName(i: number): string {
  return i === START_BARRIER ? "start" : String(i);
}

/** An error's message, or the thrown value as text. */
export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
