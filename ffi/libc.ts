/**
 * The libc functions the bindings use, from one `Deno.dlopen("libc.so.6")` opened on first use
 * (never at import), plus the helpers every binding needs: errno and the errors built from it,
 * and a waiter that polls one descriptor. C strings and interface names are in c_string.ts.
 *
 * Two rules keep these calls safe and fast:
 *
 * - Deno FFI does not preserve errno. Read it with {@linkcode errno} (or build the error with
 *   {@linkcode lastError}) synchronously, right after the synchronous call that failed, before
 *   any other FFI call.
 * - An address is not a reference. Buffers are passed as `"buffer"` parameters (typed arrays),
 *   and any buffer whose memory a call may still use after it returns (a non-blocking poll) is
 *   held by its owner in a `#private` field for as long as that call runs.
 *
 * @module
 */

import { SyscallError } from "./errors.ts";

// Re-exported: the C-string helpers lived here first, and every binding imports them with libc.
export { cString, IFNAMSIZ, readCString, writeInterfaceName } from "./c_string.ts";

// Parameter and result types follow glibc's prototypes on x86_64 Linux:
// int -> i32, unsigned int / socklen_t / mode_t -> u32, unsigned long / size_t / nfds_t -> u64 /
// usize, ssize_t -> isize, pointers we fill or read -> "buffer", pointers we only receive ->
// "pointer". Deno passes and returns the 64-bit integer types as bigint.
const LIBC_SYMBOLS = {
  open: {
    parameters: [
      "buffer", // const char *pathname (NUL-terminated)
      "i32", // int flags
      "u32", // mode_t mode (variadic in C; read only with O_CREAT)
    ],
    result: "i32", // int fd, -1 on error
  },
  close: {
    parameters: ["i32"], // int fd
    result: "i32", // int
  },
  capget: {
    parameters: [
      "buffer", // cap_user_header_t hdrp: { __u32 version; int pid; }
      "buffer", // cap_user_data_t datap: { __u32 effective, permitted, inheritable; }[2]
    ],
    result: "i32", // int
  },
  read: {
    parameters: [
      "i32", // int fd
      "buffer", // void *buf
      "usize", // size_t count
    ],
    result: "isize", // ssize_t
  },
  write: {
    parameters: [
      "i32", // int fd
      "buffer", // const void *buf
      "usize", // size_t count
    ],
    result: "isize", // ssize_t
  },
  /** ioctl whose third argument is a pointer to a structure or an int. */
  ioctl: {
    parameters: [
      "i32", // int fd
      "u64", // unsigned long request
      "buffer", // void *argp (variadic in C)
    ],
    result: "i32", // int
  },
  /** ioctl whose third argument is an integer passed by value (e.g. TUNSETOFFLOAD). */
  ioctlInt: {
    name: "ioctl",
    parameters: [
      "i32", // int fd
      "u64", // unsigned long request
      "u64", // unsigned long arg (variadic in C)
    ],
    result: "i32", // int
  },
  /** Synchronous poll: only with a zero timeout, to ask whether a descriptor is ready. */
  poll: {
    parameters: [
      "buffer", // struct pollfd *fds
      "u64", // nfds_t nfds
      "i32", // int timeout (ms)
    ],
    result: "i32", // int
  },
  /** Poll on a worker thread: the only non-blocking call, used to wait and never to do I/O. */
  pollWait: {
    name: "poll",
    nonblocking: true,
    parameters: [
      "buffer", // struct pollfd *fds (held by its owner while the call runs)
      "u64", // nfds_t nfds
      "i32", // int timeout (ms)
    ],
    result: "i32", // int
  },
  socket: {
    parameters: [
      "i32", // int domain
      "i32", // int type
      "i32", // int protocol
    ],
    result: "i32", // int fd
  },
  setsockopt: {
    parameters: [
      "i32", // int sockfd
      "i32", // int level
      "i32", // int optname
      "buffer", // const void *optval
      "u32", // socklen_t optlen
    ],
    result: "i32", // int
  },
  getsockopt: {
    parameters: [
      "i32", // int sockfd
      "i32", // int level
      "i32", // int optname
      "buffer", // void *optval
      "buffer", // socklen_t *optlen
    ],
    result: "i32", // int
  },
  shutdown: {
    parameters: [
      "i32", // int sockfd
      "i32", // int how
    ],
    result: "i32", // int
  },
  getsockname: {
    parameters: [
      "i32", // int sockfd
      "buffer", // struct sockaddr *addr
      "buffer", // socklen_t *addrlen
    ],
    result: "i32", // int
  },
  getpeername: {
    parameters: [
      "i32", // int sockfd
      "buffer", // struct sockaddr *addr
      "buffer", // socklen_t *addrlen
    ],
    result: "i32", // int
  },
  fcntl: {
    parameters: [
      "i32", // int fd
      "i32", // int cmd
      "i64", // long arg (variadic in C; glibc reads it as a word)
    ],
    result: "i32", // int
  },
  __errno_location: {
    parameters: [],
    result: "pointer", // int * (thread-local)
  },
  strerror: {
    parameters: ["i32"], // int errnum
    result: "pointer", // char * (static; copied out at once)
  },
  readlink: {
    parameters: [
      "buffer", // const char *pathname (NUL-terminated)
      "buffer", // char *buf
      "usize", // size_t bufsiz
    ],
    result: "isize", // ssize_t bytes placed in buf (no NUL), -1 on error
  },
  /** mallopt(3): tune glibc malloc (e.g. M_ARENA_MAX). */
  mallopt: {
    parameters: ["i32", "i32"], // int param, int value
    result: "i32", // int: 1 on success, 0 on error
  },
  /** malloc_trim(3): give free heap memory of every arena back to the kernel. */
  malloc_trim: {
    parameters: ["usize"], // size_t pad
    result: "i32", // int: 1 if memory was released
  },
  if_nametoindex: {
    parameters: ["buffer"], // const char *ifname
    result: "u32", // unsigned int, 0 on error
  },
} as const satisfies Deno.ForeignLibraryInterface;

/** The libc symbols object. */
export type LibcSymbols = Deno.DynamicLibrary<typeof LIBC_SYMBOLS>["symbols"];

let library: Deno.DynamicLibrary<typeof LIBC_SYMBOLS> | undefined;

/**
 * The libc symbols, opening libc.so.6 on the first call.
 *
 * @example
 * ```ts
 * import { libc } from "./libc.ts";
 * const fd = libc().socket(2, 2, 0); // AF_INET, SOCK_DGRAM
 * if (fd < 0 || libc().close(fd) !== 0) throw new Error("socket");
 * ```
 */
export function libc(): LibcSymbols {
  if (library === undefined) {
    try {
      library = Deno.dlopen("libc.so.6", LIBC_SYMBOLS);
    } catch (e) {
      throw new Error(
        `Cannot load libc: libc.so.6: ${(e as Error).message}. ` +
          "Run with --allow-ffi on a glibc-based Linux.",
        { cause: e },
      );
    }
  }
  return library.symbols;
}

/** open(2) flags. */
export const O_RDWR = 0o2;
/** open(2) flag: reads and writes never block; they fail with EAGAIN instead. */
export const O_NONBLOCK = 0o4000;
/** open(2) flag: the descriptor is not inherited by child processes. */
export const O_CLOEXEC = 0o2000000;

/** Address family IPv4; its datagram sockets carry the interface ioctls. */
export const AF_INET = 2;
/** Socket type for datagrams. */
export const SOCK_DGRAM = 2;
/** socket(2) type flag: close on exec. */
export const SOCK_CLOEXEC = 0o2000000;

/** poll(2) event: data to read. */
export const POLLIN = 0x001;
/** poll(2) event: writing will not block. */
export const POLLOUT = 0x004;

/**
 * The calling thread's errno. Call it synchronously right after the synchronous FFI call that
 * failed: the next FFI call may overwrite it.
 *
 * @example
 * ```ts
 * import { errno, libc } from "./libc.ts";
 * if (libc().close(-1) !== -1 || errno() !== 9) throw new Error("expected EBADF");
 * ```
 */
export function errno(): number {
  const location = libc().__errno_location();
  if (location === null) return 0;
  return new Deno.UnsafePointerView(location).getInt32(0);
}

/**
 * libc's description of an errno value.
 *
 * @example
 * ```ts
 * import { strerror } from "./libc.ts";
 * if (strerror(1) !== "Operation not permitted") throw new Error(strerror(1));
 * ```
 */
export function strerror(errnum: number): string {
  const text = libc().strerror(errnum);
  return text === null ? `errno ${errnum}` : Deno.UnsafePointerView.getCString(text);
}

/** What a failed call was doing, for {@linkcode lastError}. */
export interface FailedCall {
  /** The C function, e.g. `ioctl(TUNSETIFF)`. */
  syscall: string;
  /** Completes "Cannot ...", e.g. `create TAP device`. */
  action: string;
  /** The object, e.g. an interface name or a path. */
  detail: string;
  /** Overrides the hint derived from errno. */
  hint?: string;
}

/**
 * A {@linkcode SyscallError} built from `code`, by default the current errno: then call it
 * synchronously right after the synchronous FFI call that failed. Pass `code` when errno was
 * already read (to test for EAGAIN first).
 *
 * @example
 * ```ts
 * import { lastError, libc } from "./libc.ts";
 * if (libc().close(-1) === -1) {
 *   const e = lastError({ syscall: "close", action: "close descriptor", detail: "fd -1" });
 *   if (e.code !== "EBADF") throw e;
 * }
 * ```
 */
export function lastError(call: FailedCall, code: number = errno()): SyscallError {
  return new SyscallError({ ...call, errno: code, description: strerror(code) });
}

/**
 * Waits for one descriptor to become readable with a single non-blocking poll(2), so the
 * event loop keeps running while the kernel waits. The `struct pollfd` lives in a private
 * buffer that this object keeps alive for as long as a wait is pending.
 *
 * @example
 * ```ts
 * import { AF_INET, FdWaiter, libc, SOCK_DGRAM } from "./libc.ts";
 * const fd = libc().socket(AF_INET, SOCK_DGRAM, 0);
 * const ready = await new FdWaiter(fd).wait(10); // nothing was sent to it: times out
 * libc().close(fd);
 * if (ready) throw new Error("an idle socket is not readable");
 * ```
 */
export class FdWaiter {
  // struct pollfd { int fd; short events; short revents; }. A poll on a worker thread writes
  // revents after this call returns to the event loop, so the memory must neither be freed
  // (it is held here) nor moved: an explicit ArrayBuffer lives outside the V8 heap, whereas a
  // small typed array may start inside it.
  readonly #pollfd = new Uint8Array(new ArrayBuffer(8));
  readonly #view = new DataView(this.#pollfd.buffer);
  #pending = false;

  constructor(fd: number) {
    this.#view.setInt32(0, fd, true);
    this.#view.setInt16(4, POLLIN, true);
  }

  /**
   * Resolves true when the descriptor is readable or in an error state (the next read reports
   * the error), false on timeout or when the poll itself failed (its errno is lost on the
   * worker thread; the next read reports any lasting problem).
   */
  async wait(timeoutMs: number): Promise<boolean> {
    if (this.#pending) {
      throw new Error("Cannot wait for descriptor: another wait on it is still pending");
    }
    this.#pending = true;
    this.#view.setInt16(6, 0, true);
    try {
      const ready = await libc().pollWait(this.#pollfd, 1n, Math.max(0, Math.trunc(timeoutMs)));
      return ready > 0 && this.#view.getInt16(6, true) !== 0;
    } finally {
      this.#pending = false;
    }
  }

  /** True when the descriptor is readable right now (a synchronous poll with no timeout). */
  readableNow(): boolean {
    this.#view.setInt16(6, 0, true);
    return libc().poll(this.#pollfd, 1n, 0) > 0 && this.#view.getInt16(6, true) !== 0;
  }
}
