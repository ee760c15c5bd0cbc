/**
 * TLS for the floor relay ({@link ./floor_relay.ts}): OpenSSL 3's libssl over FFI, every call
 * synchronous on a non-blocking socket, so the relay's single poll loop can encrypt without
 * Deno's event loop (Deno's own TLS exists only behind async ops).
 *
 * This is part of a measuring stick, not of the agent: the agent's links use Deno's TLS. It
 * binds only what a relay needs: a context from PEM files, a handshake that checks the peer's
 * certificate against a CA file and a host name, and reads and writes. TLS 1.3 only, like the
 * agent's links.
 *
 * @module
 */

import { cString } from "../ffi/libc.ts";

// OpenSSL 3 prototypes on x86_64 Linux: int -> i32, long -> i64, size_t -> usize; handles we
// receive -> "pointer", memory we fill or read -> "buffer".
const SYMBOLS = {
  TLS_client_method: { parameters: [], result: "pointer" },
  TLS_server_method: { parameters: [], result: "pointer" },
  SSL_CTX_new: { parameters: ["pointer"], result: "pointer" },
  /** long SSL_CTX_ctrl(SSL_CTX *, int cmd, long larg, void *parg): the macros' backend. */
  SSL_CTX_ctrl: { parameters: ["pointer", "i32", "i64", "pointer"], result: "i64" },
  /** int SSL_CTX_use_certificate_chain_file(SSL_CTX *, const char *path) */
  SSL_CTX_use_certificate_chain_file: { parameters: ["pointer", "buffer"], result: "i32" },
  /** int SSL_CTX_use_PrivateKey_file(SSL_CTX *, const char *path, int type) */
  SSL_CTX_use_PrivateKey_file: { parameters: ["pointer", "buffer", "i32"], result: "i32" },
  /** int SSL_CTX_load_verify_locations(SSL_CTX *, const char *CAfile, const char *CApath) */
  SSL_CTX_load_verify_locations: { parameters: ["pointer", "buffer", "pointer"], result: "i32" },
  /** void SSL_CTX_set_verify(SSL_CTX *, int mode, SSL_verify_cb callback (NULL)) */
  SSL_CTX_set_verify: { parameters: ["pointer", "i32", "pointer"], result: "void" },
  SSL_CTX_set_default_read_buffer_len: { parameters: ["pointer", "usize"], result: "void" },
  SSL_new: { parameters: ["pointer"], result: "pointer" },
  SSL_set_fd: { parameters: ["pointer", "i32"], result: "i32" },
  SSL_set_connect_state: { parameters: ["pointer"], result: "void" },
  SSL_set_accept_state: { parameters: ["pointer"], result: "void" },
  /** int SSL_set1_host(SSL *, const char *hostname): the name the certificate must carry. */
  SSL_set1_host: { parameters: ["pointer", "buffer"], result: "i32" },
  SSL_do_handshake: { parameters: ["pointer"], result: "i32" },
  /** int SSL_read_ex(SSL *, void *buf, size_t num, size_t *readbytes) */
  SSL_read_ex: { parameters: ["pointer", "buffer", "usize", "buffer"], result: "i32" },
  /** int SSL_write_ex(SSL *, const void *buf, size_t num, size_t *written) */
  SSL_write_ex: { parameters: ["pointer", "buffer", "usize", "buffer"], result: "i32" },
  SSL_get_error: { parameters: ["pointer", "i32"], result: "i32" },
  SSL_get_verify_result: { parameters: ["pointer"], result: "i64" },
} as const satisfies Deno.ForeignLibraryInterface;

type Symbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

const SSL_ERROR_WANT_READ = 2;
const SSL_ERROR_WANT_WRITE = 3;
const SSL_CTRL_MODE = 33;
const SSL_CTRL_SET_READ_AHEAD = 41;
const SSL_CTRL_SET_MIN_PROTO_VERSION = 123;
const TLS1_3_VERSION = 0x0304;
const SSL_MODE_ENABLE_PARTIAL_WRITE = 0x1;
const SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER = 0x2;
const SSL_VERIFY_PEER = 0x1;
const SSL_FILETYPE_PEM = 1;
/** Read-ahead buffer: a whole 16 KiB record and the next ones in one read(2). */
const READ_BUFFER_BYTES = 256 * 1024;

/** A step could not finish until the socket is readable. */
export const WANT_READ = -1;
/** A step could not finish until the socket is writable. */
export const WANT_WRITE = -2;

let lib: Symbols | null = null;

function ssl(): Symbols {
  if (lib === null) {
    try {
      lib = Deno.dlopen("libssl.so.3", SYMBOLS).symbols;
    } catch (e) {
      throw new Error(
        `Cannot load libssl.so.3 for the TLS floor relay (apt-get install libssl3): ${
          (e as Error).message
        }`,
      );
    }
  }
  return lib;
}

/** Which side of the handshake, and its PEM files. */
export type FloorTlsOptions =
  | { role: "server"; certFile: string; keyFile: string }
  | { role: "client"; caFile: string; serverName: string };

/** One TLS 1.3 session on a connected non-blocking socket; it does not own the socket. */
export class FloorTls {
  readonly #ssl: Deno.PointerObject;
  readonly #count = new BigUint64Array(1);
  readonly #countBytes = new Uint8Array(this.#count.buffer);

  /** @throws {Error} naming the file or setting OpenSSL refused */
  constructor(fd: number, options: FloorTlsOptions) {
    const s = ssl();
    const server = options.role === "server";
    const ctx = s.SSL_CTX_new(server ? s.TLS_server_method() : s.TLS_client_method());
    if (ctx === null) throw new Error("Cannot create an OpenSSL context");
    s.SSL_CTX_ctrl(ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, BigInt(TLS1_3_VERSION), null);
    const mode = SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER;
    s.SSL_CTX_ctrl(ctx, SSL_CTRL_MODE, BigInt(mode), null);
    s.SSL_CTX_ctrl(ctx, SSL_CTRL_SET_READ_AHEAD, 1n, null);
    s.SSL_CTX_set_default_read_buffer_len(ctx, BigInt(READ_BUFFER_BYTES));
    if (options.role === "server") {
      if (s.SSL_CTX_use_certificate_chain_file(ctx, cString(options.certFile)) !== 1) {
        throw new Error(`Cannot use certificate file ${options.certFile}: not a PEM certificate`);
      }
      if (s.SSL_CTX_use_PrivateKey_file(ctx, cString(options.keyFile), SSL_FILETYPE_PEM) !== 1) {
        throw new Error(`Cannot use key file ${options.keyFile}: not the certificate's PEM key`);
      }
    } else {
      if (s.SSL_CTX_load_verify_locations(ctx, cString(options.caFile), null) !== 1) {
        throw new Error(`Cannot trust CA file ${options.caFile}: not a PEM certificate`);
      }
      s.SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, null);
    }
    const session = s.SSL_new(ctx);
    if (session === null || s.SSL_set_fd(session, fd) !== 1) {
      throw new Error("Cannot attach an OpenSSL session to the socket");
    }
    if (options.role === "client") {
      s.SSL_set_connect_state(session);
      if (s.SSL_set1_host(session, cString(options.serverName)) !== 1) {
        throw new Error(`Cannot check the server's name ${options.serverName}`);
      }
    } else {
      s.SSL_set_accept_state(session);
    }
    this.#ssl = session;
  }

  /** One handshake step: 0 when done, or what the socket must become first. */
  handshake(): number {
    const r = ssl().SSL_do_handshake(this.#ssl);
    if (r === 1) return 0;
    return this.#wouldBlock(r, "complete the TLS handshake");
  }

  /** Decrypted bytes into `into`, or {@linkcode WANT_READ} / {@linkcode WANT_WRITE}. */
  read(into: Uint8Array): number {
    const r = ssl().SSL_read_ex(this.#ssl, into, BigInt(into.length), this.#countBytes);
    return r === 1 ? Number(this.#count[0]) : this.#wouldBlock(r, "read");
  }

  /** Bytes of `from` taken, or {@linkcode WANT_READ} / {@linkcode WANT_WRITE}. */
  write(from: Uint8Array): number {
    const r = ssl().SSL_write_ex(this.#ssl, from, BigInt(from.length), this.#countBytes);
    return r === 1 ? Number(this.#count[0]) : this.#wouldBlock(r, "write");
  }

  /** @throws {Error} for anything but "try again when the socket is ready" */
  #wouldBlock(r: number, action: string): number {
    const code = ssl().SSL_get_error(this.#ssl, r);
    if (code === SSL_ERROR_WANT_READ) return WANT_READ;
    if (code === SSL_ERROR_WANT_WRITE) return WANT_WRITE;
    const verify = ssl().SSL_get_verify_result(this.#ssl);
    throw new Error(
      `Cannot ${action} (OpenSSL error ${code}${
        verify !== 0n ? `, certificate check failed: X509 error ${verify}` : ""
      }): the peer closed or the session failed`,
    );
  }
}
