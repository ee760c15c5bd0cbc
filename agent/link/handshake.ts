/**
 * The message exchange before a link is established: preamble, HELLO, AUTH, WELCOME (or
 * DISCOVER / CA_CERT). Every wait is bounded by a deadline, so a peer that never finishes
 * its handshake (slowloris) costs one timer and is then disconnected.
 *
 * @module
 */

import { type Clock, systemClock } from "../clock.ts";
import type { Conn } from "./transport.ts";
import {
  HEADER_LEN,
  type Message,
  type MessageTypeValue,
  PREAMBLE_LEN,
  ProtocolError,
  StreamReader,
  writeHeader,
  writePreamble,
} from "./wire.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Largest JSON body accepted during a handshake (certificates fit). */
export const MAX_HANDSHAKE_BODY = 64 * 1024;

/** The handshake did not finish in time. */
export class HandshakeTimeout extends Error {
  override name = "HandshakeTimeout";
}

/**
 * One side of a handshake over `conn`. After it, hand {@linkcode reader} to the Link: it may
 * already hold the first messages of the established stream.
 */
export class Handshake {
  readonly conn: Conn;
  /** Small and capped at {@linkcode MAX_HANDSHAKE_BODY} until the Link takes it over. */
  readonly reader: StreamReader;
  readonly #deadline: number;
  readonly #clock: Clock;
  readonly #maxBody: number;

  /**
   * @param timeoutMs time from now within which the whole handshake must finish.
   * @param options.maxBodyBytes a smaller cap than {@linkcode MAX_HANDSHAKE_BODY} (discovery).
   */
  constructor(
    conn: Conn,
    timeoutMs: number,
    options: { clock?: Clock; maxBodyBytes?: number } = {},
  ) {
    this.conn = conn;
    this.#clock = options.clock ?? systemClock;
    this.#maxBody = Math.min(options.maxBodyBytes ?? MAX_HANDSHAKE_BODY, MAX_HANDSHAKE_BODY);
    this.reader = new StreamReader(undefined, { preAuthBodyBytes: this.#maxBody });
    this.#deadline = this.#clock.monotonic() + timeoutMs;
  }

  #started = false;

  /** Writes the preamble and, optionally, a first message, in one write. */
  async start(type?: MessageTypeValue, body?: unknown): Promise<void> {
    this.#started = true;
    const payload = type === undefined ? null : encodeBody(body);
    const out = new Uint8Array(PREAMBLE_LEN + (payload ? HEADER_LEN + payload.length : 0));
    writePreamble(out, 0);
    if (payload) {
      writeHeader(out, PREAMBLE_LEN, type!, payload.length);
      out.set(payload, PREAMBLE_LEN + HEADER_LEN);
    }
    await this.#write(out);
  }

  /**
   * Sends one message; `body` is JSON-encoded unless it is bytes or a string. The preamble goes
   * first if this side has not sent it yet (a refusal can come before anything else).
   */
  async send(type: MessageTypeValue, body?: unknown): Promise<void> {
    if (!this.#started) return await this.start(type, body);
    const payload = encodeBody(body);
    const out = new Uint8Array(HEADER_LEN + payload.length);
    writeHeader(out, 0, type, payload.length);
    out.set(payload, HEADER_LEN);
    await this.#write(out);
  }

  /**
   * Waits for the next message and checks its type is one of `types`.
   *
   * @throws {ProtocolError} for another type or an oversized body; {@linkcode HandshakeTimeout}.
   */
  async expect(...types: MessageTypeValue[]): Promise<Message> {
    for (;;) {
      const m = this.reader.next();
      if (m) {
        if (!types.includes(m.type)) {
          throw new ProtocolError(
            `Cannot continue handshake: expected message type ${types.map(hex).join(" or ")}, got ${
              hex(m.type)
            }`,
          );
        }
        if (m.body.length > this.#maxBody) {
          throw new ProtocolError(
            `Cannot continue handshake: ${m.body.length}-byte message is too large`,
          );
        }
        return m;
      }
      const n = await this.#withDeadline(this.conn.read(this.reader.space()));
      if (n === null) {
        throw new ProtocolError("Cannot continue handshake: the peer closed the connection");
      }
      this.reader.commit(n);
    }
  }

  /** Parses a message body as a JSON object. */
  static json(m: Message): Record<string, unknown> {
    let v: unknown;
    try {
      v = JSON.parse(decoder.decode(m.body));
    } catch {
      throw new ProtocolError(
        `Cannot continue handshake: message ${hex(m.type)} is not valid JSON`,
      );
    }
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      throw new ProtocolError(
        `Cannot continue handshake: message ${hex(m.type)} is not a JSON object`,
      );
    }
    return v as Record<string, unknown>;
  }

  async #write(bytes: Uint8Array): Promise<void> {
    let off = 0;
    while (off < bytes.length) {
      off += await this.#withDeadline(this.conn.write(bytes.subarray(off)));
    }
  }

  #withDeadline<T>(p: Promise<T>): Promise<T> {
    const left = this.#deadline - this.#clock.monotonic();
    if (left <= 0) {
      // Nobody waits for `p` any more: its failure (the stream closed under it) must not
      // surface as an unhandled rejection, which ends the process.
      p.catch(() => {});
      return Promise.reject(new HandshakeTimeout("Cannot finish handshake: timed out"));
    }
    let timer: { cancel(): void } | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = this.#clock.after(
        left,
        () => reject(new HandshakeTimeout("Cannot finish handshake: timed out")),
      );
    });
    return Promise.race([p, timeout]).finally(() => timer?.cancel());
  }
}

function hex(t: number): string {
  return "0x" + t.toString(16).padStart(2, "0");
}

function encodeBody(body: unknown): Uint8Array {
  if (body === undefined) return new Uint8Array(0);
  if (body instanceof Uint8Array) return body;
  if (typeof body === "string") return encoder.encode(body);
  return encoder.encode(JSON.stringify(body));
}

/** Reads a string field of a handshake message, refusing a missing or wrong-typed one. */
export function field(obj: Record<string, unknown>, key: string, max = 4096): string {
  const v = obj[key];
  if (typeof v !== "string" || v.length > max) {
    throw new ProtocolError(`Cannot continue handshake: field "${key}" is missing or not a string`);
  }
  return v;
}
