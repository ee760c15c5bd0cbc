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
  /** void SSL_set_bio(SSL *, BIO *rbio, BIO *wbio): the session takes both. */
  SSL_set_bio: { parameters: ["pointer", "pointer", "pointer"], result: "void" },
} as const satisfies Deno.ForeignLibraryInterface;

// libcrypto's BIOs, to put a write buffer between the session and the socket.
const BIO_SYMBOLS = {
  /** BIO *BIO_new_socket(int sock, int close_flag) */
  BIO_new_socket: { parameters: ["i32", "i32"], result: "pointer" },
  BIO_f_buffer: { parameters: [], result: "pointer" }, // const BIO_METHOD *
  BIO_new: { parameters: ["pointer"], result: "pointer" }, // BIO *(const BIO_METHOD *)
  BIO_push: { parameters: ["pointer", "pointer"], result: "pointer" }, // BIO *(b, append)
  /** long BIO_int_ctrl(BIO *, int cmd, long larg, int iarg) */
  BIO_int_ctrl: { parameters: ["pointer", "i32", "i64", "i32"], result: "i64" },
  /** long BIO_ctrl(BIO *, int cmd, long larg, void *parg) */
  BIO_ctrl: { parameters: ["pointer", "i32", "i64", "pointer"], result: "i64" },
  /** int BIO_test_flags(const BIO *, int flags) */
  BIO_test_flags: { parameters: ["pointer", "i32"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

type Symbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];
type BioSymbols = Deno.DynamicLibrary<typeof BIO_SYMBOLS>["symbols"];

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
/**
 * Write buffer: OpenSSL writes each 16 KiB record with its own write(2) (five per superframe);
 * records collect here and leave in one write per batch ({@linkcode FloorTls.flush}).
 */
const WRITE_BUFFER_BYTES = 256 * 1024;
const BIO_NOCLOSE = 0;
const BIO_C_SET_BUFF_SIZE = 117;
const BIO_CTRL_FLUSH = 11;
const BIO_FLAGS_SHOULD_RETRY = 0x08;

/** A step could not finish until the socket is readable. */
export const WANT_READ = -1;
/** A step could not finish until the socket is writable. */
export const WANT_WRITE = -2;

let lib: Symbols | null = null;
let bioLib: BioSymbols | null = null;

function bio(): BioSymbols {
  bioLib ??= Deno.dlopen("libcrypto.so.3", BIO_SYMBOLS).symbols;
  return bioLib;
}

function ssl(): Symbols {
  if (lib === null) {
    try {
      lib = Deno.dlopen("libssl.so.3", SYMBOLS).symbols;
      bio();
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

/**
 * One TLS 1.3 session on a connected non-blocking socket; it does not own the socket. Nothing
 * is freed: a relay has one session, which ends with its process.
 */
export class FloorTls {
  readonly #ssl: Deno.PointerObject;
  readonly #wbio: Deno.PointerObject;
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
    const b = bio();
    const rbio = b.BIO_new_socket(fd, BIO_NOCLOSE);
    const buffer = b.BIO_new(b.BIO_f_buffer());
    const wbio = buffer === null ? null : b.BIO_push(buffer, b.BIO_new_socket(fd, BIO_NOCLOSE));
    if (session === null || rbio === null || wbio === null) {
      throw new Error("Cannot attach an OpenSSL session to the socket");
    }
    b.BIO_int_ctrl(wbio, BIO_C_SET_BUFF_SIZE, BigInt(WRITE_BUFFER_BYTES), 1);
    s.SSL_set_bio(session, rbio, wbio);
    this.#wbio = wbio;
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

  /**
   * Sends what the write buffer holds: 0 when it is empty, or {@linkcode WANT_WRITE} when the
   * socket is full (call again once it is writable). Call after each batch of writes.
   */
  flush(): number {
    const b = bio();
    if (b.BIO_ctrl(this.#wbio, BIO_CTRL_FLUSH, 0n, null) > 0n) return 0;
    if (b.BIO_test_flags(this.#wbio, BIO_FLAGS_SHOULD_RETRY) !== 0) return WANT_WRITE;
    throw new Error("Cannot send the TLS records: the peer closed or the socket failed");
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
