/**
 * The link stream codec, version 1 (docs/protocol.md tells the whole protocol).
 *
 * A stream starts with an 8-byte preamble from each side, then carries messages:
 *
 *     preamble  "VNET" | u8 version | u8 0 | u16 0
 *     message   u8 type | u24 body length (big-endian) | body
 *
 * Frames travel as `FRAME` messages whose body is the agent's packet layout (10-byte
 * virtio-net header + Ethernet frame), so superframes cross a link whole. Everything else is
 * rare and travels as JSON. The codec is pure: it never touches a socket or a clock.
 *
 * @module
 */

import { MAX_PACKET_BYTES, MIN_PACKET_BYTES } from "../packet/layout.ts";

/** Protocol version spoken by this build. */
export const PROTOCOL_VERSION = 1;

/** Bytes of the stream preamble. */
export const PREAMBLE_LEN = 8;

/** Bytes of a message header. */
export const HEADER_LEN = 4;

/** Largest body of a FRAME message: the largest packet of the agent's layout. */
export const MAX_FRAME_BODY = MAX_PACKET_BYTES;

/** Largest body of a JSON message (traffic reports of thousands of VM pairs fit). */
export const MAX_JSON_BODY = 4 * 1024 * 1024;

/** Message types. Values are part of the wire format: never renumber. */
export const MessageType = {
  /** First message of each side after the preamble: who I am, what I can do (JSON). */
  HELLO: 0x01,
  /** The joining side's proof of the join secret or of a link ticket (JSON). */
  AUTH: 0x02,
  /** The accepting side admits the peer; carries its assigned settings (JSON). */
  WELCOME: 0x03,
  /** Asks for the proxy's CA certificate before trust is established (empty body). */
  DISCOVER: 0x04,
  /** Answer to DISCOVER: the CA certificate in PEM (UTF-8). */
  CA_CERT: 0x05,
  /** One packet: virtio-net header + Ethernet frame. */
  FRAME: 0x10,
  /** A control message (JSON with a `type` field). */
  CONTROL: 0x20,
  /** Keepalive request; the body (8 bytes) is echoed in the PONG. */
  PING: 0x30,
  /** Keepalive answer. */
  PONG: 0x31,
  /** Clean close with a reason (JSON); the sender closes after it. */
  GOODBYE: 0x3f,
} as const;

/** One of {@linkcode MessageType}'s values. */
export type MessageTypeValue = typeof MessageType[keyof typeof MessageType];

const KNOWN_TYPES = new Set<number>(Object.values(MessageType));

/** The buffer of a reader whose peer is not authenticated yet (grows up to the cap if needed). */
const PRE_AUTH_BUFFER_BYTES = 16 * 1024;

/**
 * The buffer of a link that carries little (keepalives, control messages, a few frames): what
 * an idle link costs. Traffic that fills it grows it to the working size at once.
 */
export const IDLE_READ_BUFFER_BYTES = 4 * 1024;

/** Small reads in a row after which a grown buffer goes back to the idle size. */
const SHRINK_AFTER_SMALL_READS = 32;

/** Largest body each message type may carry. */
function maxBody(type: number): number {
  switch (type) {
    case MessageType.FRAME:
      return MAX_FRAME_BODY;
    case MessageType.PING:
    case MessageType.PONG:
      return 64;
    case MessageType.DISCOVER:
      return 0;
    default:
      return MAX_JSON_BODY;
  }
}

/**
 * The peer broke the protocol: the stream cannot be trusted any further and must be closed.
 * Callers catch it to close that one link with a clear log line, never the process.
 */
export class ProtocolError extends Error {
  override name = "ProtocolError";
}

/**
 * Writes this build's preamble into `out` at `offset`; returns the bytes written.
 *
 * @example
 * ```ts
 * import { PREAMBLE_LEN, writePreamble } from "./wire.ts";
 * const b = new Uint8Array(PREAMBLE_LEN);
 * writePreamble(b, 0);
 * if (new TextDecoder().decode(b.subarray(0, 4)) !== "VNET") throw new Error("magic");
 * ```
 */
export function writePreamble(out: Uint8Array, offset: number): number {
  out[offset] = 0x56; // V
  out[offset + 1] = 0x4e; // N
  out[offset + 2] = 0x45; // E
  out[offset + 3] = 0x54; // T
  out[offset + 4] = PROTOCOL_VERSION;
  out[offset + 5] = 0;
  out[offset + 6] = 0;
  out[offset + 7] = 0;
  return PREAMBLE_LEN;
}

/**
 * Checks a peer's preamble and returns its protocol version.
 *
 * @throws {ProtocolError} when the bytes are not a vnet stream or speak another version.
 * @example
 * ```ts
 * import { checkPreamble, PREAMBLE_LEN, writePreamble } from "./wire.ts";
 * const b = new Uint8Array(PREAMBLE_LEN);
 * writePreamble(b, 0);
 * if (checkPreamble(b) !== 1) throw new Error("version");
 * ```
 */
export function checkPreamble(bytes: Uint8Array): number {
  if (
    bytes.length < PREAMBLE_LEN || bytes[0] !== 0x56 || bytes[1] !== 0x4e ||
    bytes[2] !== 0x45 || bytes[3] !== 0x54
  ) {
    throw new ProtocolError("Cannot accept stream: the peer is not speaking the vnet protocol");
  }
  const version = bytes[4];
  if (version !== PROTOCOL_VERSION) {
    throw new ProtocolError(
      `Cannot accept stream: the peer speaks vnet protocol version ${version}, ` +
        `this agent speaks ${PROTOCOL_VERSION}; run the same agent version on both ends`,
    );
  }
  return version;
}

/**
 * Writes a message header into `out` at `offset`; the body follows at `offset + 4`.
 *
 * @example
 * ```ts
 * import { MessageType, writeHeader } from "./wire.ts";
 * const b = new Uint8Array(4);
 * writeHeader(b, 0, MessageType.FRAME, 0x010203);
 * if (b.join() !== "16,1,2,3") throw new Error("header");
 * ```
 */
export function writeHeader(out: Uint8Array, offset: number, type: number, bodyLen: number): void {
  out[offset] = type;
  out[offset + 1] = (bodyLen >>> 16) & 0xff;
  out[offset + 2] = (bodyLen >>> 8) & 0xff;
  out[offset + 3] = bodyLen & 0xff;
}

/**
 * One whole message (header and `body`) in a new buffer, for the rare message sent outside
 * a link's send queue (a GOODBYE on close).
 *
 * @example
 * ```ts
 * import { encodeMessage, HEADER_LEN, MessageType } from "./wire.ts";
 * const m = encodeMessage(MessageType.GOODBYE, new Uint8Array([123, 125]));
 * if (m.length !== HEADER_LEN + 2 || m[0] !== MessageType.GOODBYE) throw new Error();
 * ```
 */
export function encodeMessage(type: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER_LEN + body.length);
  writeHeader(out, 0, type, body.length);
  out.set(body, HEADER_LEN);
  return out;
}

/** One decoded message; `body` is a view that is valid until the reader is written again. */
export interface Message {
  type: MessageTypeValue;
  body: Uint8Array;
}

/**
 * Reassembles messages from a byte stream in one buffer it owns, without copying bodies.
 *
 * The owner reads from its socket straight into {@linkcode space}, tells how many bytes came
 * with {@linkcode commit}, then takes messages with {@linkcode next} until it returns null.
 * Bodies are views into the buffer, valid until the next `space()` call, which compacts.
 * The buffer grows to its working size (`initialBytes`) when traffic fills it, and beyond only
 * for a message larger than that (JSON up to 4 MiB), which it gives back once consumed; after
 * {@linkcode SHRINK_AFTER_SMALL_READS} small reads in a row it goes back to
 * {@linkcode IDLE_READ_BUFFER_BYTES}, so an idle link costs a page, not the working size.
 *
 * @example
 * ```ts
 * import { MessageType, StreamReader, writeHeader, writePreamble } from "./wire.ts";
 * const r = new StreamReader();
 * const s = r.space();
 * let n = writePreamble(s, 0);
 * writeHeader(s, n, MessageType.PING, 8);
 * n += 4 + 8;
 * r.commit(n);
 * const m = r.next();
 * if (m?.type !== MessageType.PING || m.body.length !== 8) throw new Error("decode");
 * ```
 */
export class StreamReader {
  #buf: Uint8Array;
  #initialBytes: number;
  #start = 0;
  #end = 0;
  #preambleSeen = false;
  /** Largest body accepted of any type, until {@linkcode authenticated}. */
  #bodyCap: number;
  /** Size of the message being received, while it is larger than the working buffer. */
  #need = 0;
  /** Reads in a row that brought at most half the idle size. */
  #smallReads = 0;

  /**
   * @param initialBytes buffer size; at least one largest frame message fits.
   * @param options.preAuthBodyBytes before the peer is authenticated: the largest body of any
   * type (checked at the header, before any byte of it is buffered), and a small buffer
   * instead of `initialBytes` until {@linkcode authenticated} is called.
   */
  constructor(initialBytes = 256 * 1024, options: { preAuthBodyBytes?: number } = {}) {
    this.#initialBytes = Math.max(initialBytes, HEADER_LEN + MAX_FRAME_BODY + PREAMBLE_LEN);
    this.#bodyCap = options.preAuthBodyBytes ?? Infinity;
    this.#buf = new Uint8Array(
      options.preAuthBodyBytes === undefined ? this.#initialBytes : PRE_AUTH_BUFFER_BYTES,
    );
  }

  /**
   * The peer is authenticated: every type may carry its full body again, and the buffer may
   * grow to its working size when traffic needs it.
   */
  authenticated(): void {
    this.#bodyCap = Infinity;
    this.#shrinkTo(IDLE_READ_BUFFER_BYTES);
  }

  /** Bytes received but not yet consumed as messages. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /** True once the peer's preamble was checked. */
  get preambleSeen(): boolean {
    return this.#preambleSeen;
  }

  /** Free space to read into; compacts first, so earlier bodies become invalid. */
  space(): Uint8Array {
    if (
      this.#buf.length > this.#initialBytes && this.#end - this.#start <= this.#initialBytes / 2 &&
      this.#need === 0
    ) {
      // A large JSON message has been consumed: give its buffer back.
      this.#shrinkTo(this.#initialBytes);
    } else if (this.#smallReads >= SHRINK_AFTER_SMALL_READS) {
      // The traffic that grew the buffer is over.
      this.#smallReads = 0;
      this.#shrinkTo(IDLE_READ_BUFFER_BYTES);
    }
    if (this.#start > 0) {
      if (this.#start === this.#end) {
        this.#start = this.#end = 0;
      } else {
        this.#buf.copyWithin(0, this.#start, this.#end);
        this.#end -= this.#start;
        this.#start = 0;
      }
    }
    if (this.#end === this.#buf.length) this.#grow();
    return this.#buf.subarray(this.#end);
  }

  /** Records that `n` bytes were written into the last {@linkcode space}. */
  commit(n: number): void {
    if (n < 0 || this.#end + n > this.#buf.length) {
      throw new RangeError(`Cannot commit ${n} bytes: only ${this.#buf.length - this.#end} free`);
    }
    this.#end += n;
    if (n <= IDLE_READ_BUFFER_BYTES / 2) this.#smallReads++;
    else this.#smallReads = 0;
  }

  /**
   * The next complete message, or null when more bytes are needed.
   *
   * @throws {ProtocolError} on a bad preamble, an unknown type or an oversized body.
   */
  next(): Message | null {
    if (!this.#preambleSeen) {
      if (this.#end - this.#start < PREAMBLE_LEN) return null;
      checkPreamble(this.#buf.subarray(this.#start, this.#start + PREAMBLE_LEN));
      this.#start += PREAMBLE_LEN;
      this.#preambleSeen = true;
    }
    if (this.#end - this.#start < HEADER_LEN) return null;
    const b = this.#buf;
    const at = this.#start;
    const type = b[at];
    const len = (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3];
    if (!KNOWN_TYPES.has(type)) {
      throw new ProtocolError(`Cannot decode message: unknown type 0x${type.toString(16)}`);
    }
    const limit = Math.min(maxBody(type), this.#bodyCap);
    if (len > limit) {
      throw new ProtocolError(
        `Cannot decode message: type 0x${type.toString(16)} body of ${len} bytes exceeds ${limit}`,
      );
    }
    if (type === MessageType.FRAME && len < MIN_PACKET_BYTES) {
      throw new ProtocolError(
        `Cannot decode frame: ${len} bytes is shorter than ${MIN_PACKET_BYTES}`,
      );
    }
    const total = HEADER_LEN + len;
    if (this.#end - at < total) {
      // Keep the room for this message until it is complete: shrinking and growing again for
      // every record of a large message costs a core.
      if (total > this.#initialBytes) this.#need = total;
      if (total > this.#buf.length) this.#reserve(total);
      return null;
    }
    this.#need = 0;
    this.#start = at + total;
    return { type: type as MessageTypeValue, body: b.subarray(at + HEADER_LEN, at + total) };
  }

  /** Moves the unread bytes into a new buffer of `bytes`, when they fit in half of it. */
  #shrinkTo(bytes: number): void {
    const held = this.#end - this.#start;
    if (this.#buf.length <= bytes || held > bytes / 2 || this.#need !== 0) return;
    const kept = this.#buf.subarray(this.#start, this.#end);
    this.#buf = new Uint8Array(bytes);
    this.#buf.set(kept);
    this.#end = held;
    this.#start = 0;
  }

  #grow(): void {
    this.#reserve(this.#buf.length * 2);
  }

  #reserve(bytes: number): void {
    const floor = this.#bodyCap === Infinity ? this.#initialBytes : PRE_AUTH_BUFFER_BYTES;
    const next = new Uint8Array(Math.max(bytes, floor));
    next.set(this.#buf.subarray(this.#start, this.#end));
    this.#end -= this.#start;
    this.#start = 0;
    this.#buf = next;
  }
}
