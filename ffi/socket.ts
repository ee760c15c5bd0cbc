/**
 * TCP_NODELAY for sockets Deno does not let us configure.
 *
 * Deno's accepted connections, TLS ones included, come with Nagle's algorithm on, and
 * `Deno.TlsConn` has no `setNoDelay()`. On a link that carries frames, Nagle holds a small
 * frame back until the previous one is acknowledged: with delayed ACKs that is tens of
 * milliseconds of added latency, seen here as a 20 ms p99 ping through the proxy. Deno also
 * gives no file descriptor, so we find the socket among our own descriptors by its two
 * endpoints (getsockname/getpeername) and set the option with setsockopt.
 *
 * @module
 */

import { lastError, libc } from "./libc.ts";

const IPPROTO_TCP = 6;
const TCP_NODELAY = 1;
const AF_INET = 2;
const AF_INET6 = 10;
/** Highest descriptor number searched (a proxy with thousands of hosts stays well below). */
const MAX_FD_SCAN = 65_536;

/** An endpoint as Deno reports it. */
export interface Endpoint {
  hostname: string;
  port: number;
}

/** Port of a sockaddr_in / sockaddr_in6 (network byte order at offset 2), or -1. */
function portOf(addr: Uint8Array): number {
  const family = addr[0] | (addr[1] << 8);
  if (family !== AF_INET && family !== AF_INET6) return -1;
  return (addr[2] << 8) | addr[3];
}

/** The IPv4-mapped IPv6 prefix ::ffff:0:0/96. */
const V4_MAPPED = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

/**
 * An address as Deno writes it (`10.0.0.1`, `fd00::1`, `::ffff:10.0.0.1`, a `%zone` ignored)
 * as 16 bytes, IPv4 as IPv4-mapped IPv6; null when it is not an IP literal.
 *
 * @example
 * ```ts
 * import { addressBytes } from "./socket.ts";
 * const v4 = addressBytes("10.0.0.1")!, mapped = addressBytes("::ffff:10.0.0.1")!;
 * if (v4.toHex() !== mapped.toHex() || v4.toHex() !== "00000000000000000000ffff0a000001") {
 *   throw new Error("IPv4 is IPv4-mapped");
 * }
 * if (addressBytes("fd00::1")!.toHex() !== "fd000000000000000000000000000001") throw new Error();
 * if (addressBytes("host.example") !== null) throw new Error("not a literal");
 * ```
 */
export function addressBytes(hostname: string): Uint8Array | null {
  const text = hostname.replace(/%.*$/, "").replace(/^\[|\]$/g, "");
  const v4 = (t: string) => {
    const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(t);
    const b = m?.slice(1).map(Number);
    return b && b.every((x) => x <= 255) ? b : null;
  };
  const plain = v4(text);
  if (plain) return new Uint8Array([...V4_MAPPED, ...plain]);
  const halves = text.split("::");
  if (halves.length > 2 || !/^[0-9a-fA-F:.]+$/.test(text)) return null;
  const words = (part: string): number[] | null => {
    const out: number[] = [];
    for (const g of part ? part.split(":") : []) {
      const tail = g.includes(".") ? v4(g) : null;
      if (tail) out.push((tail[0] << 8) | tail[1], (tail[2] << 8) | tail[3]);
      else if (/^[0-9a-fA-F]{1,4}$/.test(g)) out.push(parseInt(g, 16));
      else return null;
    }
    return out;
  };
  const head = words(halves[0]), tail = halves.length === 2 ? words(halves[1]) : [];
  if (!head || !tail) return null;
  const gap = 8 - head.length - tail.length;
  if (halves.length === 2 ? gap < 1 : gap !== 0) return null;
  const all = [...head, ...Array(gap).fill(0), ...tail];
  return new Uint8Array(all.flatMap((w) => [w >> 8, w & 0xff]));
}

/**
 * Whether sockaddr `addr` is `address` (16 bytes from {@linkcode addressBytes}) at `port`:
 * a sockaddr_in's address at offset 4, a sockaddr_in6's at offset 8.
 */
export function sockaddrIs(addr: Uint8Array, address: Uint8Array | null, port: number): boolean {
  if (portOf(addr) !== port) return false;
  if (address === null) return true; // not a literal: the port alone, as before
  const family = addr[0] | (addr[1] << 8);
  if (family === AF_INET) {
    return V4_MAPPED.every((b, i) => address[i] === b) &&
      addr.subarray(4, 8).every((b, i) => address[12 + i] === b);
  }
  return addr.subarray(8, 24).every((b, i) => address[i] === b);
}

/** Where {@linkcode findTcpSocket} found its last socket: where it starts the next search. */
let lastFound = 3;

/**
 * Finds the descriptor of the TCP socket between `local` and `remote` (addresses and ports),
 * or -1. Ports alone are not enough: two hosts behind different addresses may dial from the
 * same port, and the descriptor is used to shut a connection down.
 */
export function findTcpSocket(local: Endpoint, remote: Endpoint): number {
  const addr = new Uint8Array(128);
  const len = new Uint32Array(1);
  const lenBytes = new Uint8Array(len.buffer);
  const localAddress = addressBytes(local.hostname);
  const remoteAddress = addressBytes(remote.hostname);
  // Asking the kernel directly needs no permission beyond FFI (Deno guards /proc/self/fd
  // behind --allow-all); a non-socket or unused number just fails the call. Descriptors are
  // handed out lowest-first: a new connection's is just above the last one found (they are
  // added), or a hole just freed near it (a connection closed). So the search starts at the
  // last hit and widens both ways: a proxy with ten thousand links finds the next one in a
  // few calls instead of thousands, and every number is still tried when it is elsewhere.
  const matches = (fd: number): boolean => {
    len[0] = addr.length;
    if (libc().getsockname(fd, addr, lenBytes) !== 0) return false;
    if (!sockaddrIs(addr, localAddress, local.port)) return false;
    len[0] = addr.length;
    return libc().getpeername(fd, addr, lenBytes) === 0 &&
      sockaddrIs(addr, remoteAddress, remote.port);
  };
  for (let d = 0;; d++) {
    const up = lastFound + d;
    const down = lastFound - d - 1;
    if (up >= MAX_FD_SCAN && down < 3) return -1;
    if (up < MAX_FD_SCAN && matches(up)) return lastFound = up;
    if (down >= 3 && matches(down)) return lastFound = down;
  }
}

/**
 * Turns Nagle's algorithm off on the TCP connection between `local` and `remote`; returns
 * false when the socket could not be found (the connection closed meanwhile).
 *
 * @throws {SyscallError} when setsockopt fails.
 */
export function setTcpNoDelay(local: Endpoint, remote: Endpoint): boolean {
  return setTcpNoDelayOn(findTcpSocket(local, remote), local, remote);
}

function setTcpNoDelayOn(fd: number, local: Endpoint, remote: Endpoint): boolean {
  if (fd < 0) return false;
  const one = new Int32Array([1]);
  if (libc().setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, new Uint8Array(one.buffer), 4) !== 0) {
    throw lastError({
      syscall: "setsockopt(TCP_NODELAY)",
      action: "disable Nagle's algorithm",
      detail: `${local.hostname}:${local.port} <-> ${remote.hostname}:${remote.port}`,
    });
  }
  return true;
}

/**
 * Turns Nagle's algorithm off on a connection Deno accepted (it accepts with Nagle on, TLS
 * ones included); returns why setting it failed, in one line, or null. Never throws: a listener
 * logs the reason and serves the connection anyway.
 */
export function tryTcpNoDelay(
  conn: { localAddr: Deno.Addr; remoteAddr: Deno.Addr },
): string | null {
  return noDelayOnAccepted(conn).error;
}

/**
 * What {@linkcode tryTcpNoDelay} does, also returning the socket's descriptor (-1: not
 * found), so that the owner can {@linkcode shutdownSocket} it while it owns the connection.
 */
export function noDelayOnAccepted(
  conn: { localAddr: Deno.Addr; remoteAddr: Deno.Addr },
): { fd: number; error: string | null } {
  const local = conn.localAddr as Deno.NetAddr;
  const remote = conn.remoteAddr as Deno.NetAddr;
  const fd = findTcpSocket(local, remote);
  try {
    // Not found: the connection closed meanwhile, and needs nothing.
    setTcpNoDelayOn(fd, local, remote);
    return { fd, error: null };
  } catch (e) {
    return { fd, error: (e as Error).message };
  }
}

const SHUT_RDWR = 2;
/** ioctl(2) request: bytes in a socket's receive queue not yet read (FIONREAD, SIOCINQ). */
const FIONREAD = 0x541b;

/**
 * Bytes the kernel holds in descriptor `fd`'s receive queue that this process has not read
 * yet, or -1 when it cannot say (no descriptor, or the call failed). One ioctl(2).
 */
export function unreadBytes(fd: number): number {
  if (fd < 0) return -1;
  const n = new Int32Array(1);
  return libc().ioctl(fd, BigInt(FIONREAD), new Uint8Array(n.buffer)) === 0 ? n[0] : -1;
}

/**
 * Ends the TCP connection on descriptor `fd` in both directions at once (shutdown(2)), for a
 * socket Deno would otherwise keep: an accepted TLS connection closed before its handshake
 * stays open, waiting to finish a handshake whose peer never speaks, until that peer goes.
 * `fd` must still belong to the caller's connection (call it before closing that). Errors
 * are ignored: a socket that is already down needs nothing.
 */
export function shutdownSocket(fd: number): void {
  if (fd >= 0) libc().shutdown(fd, SHUT_RDWR);
}

/** Reads TCP_NODELAY of the connection between `local` and `remote` (null: not found). */
export function tcpNoDelay(local: Endpoint, remote: Endpoint): boolean | null {
  const fd = findTcpSocket(local, remote);
  if (fd < 0) return null;
  const v = new Int32Array(1);
  const len = new Uint32Array([4]);
  if (
    libc().getsockopt(
      fd,
      IPPROTO_TCP,
      TCP_NODELAY,
      new Uint8Array(v.buffer),
      new Uint8Array(len.buffer),
    ) !== 0
  ) {
    return null;
  }
  return v[0] !== 0;
}
