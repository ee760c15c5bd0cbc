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

/** Where {@linkcode findTcpSocket} found its last socket: where it starts the next search. */
let lastFound = 3;

/**
 * Finds the descriptor of the TCP socket whose local and remote ports are `local.port` and
 * `remote.port`, or -1. Ports identify a connection among one process's sockets well enough
 * (both ends' ports together), and avoid parsing addresses.
 */
export function findTcpSocket(local: Endpoint, remote: Endpoint): number {
  const addr = new Uint8Array(128);
  const len = new Uint32Array(1);
  const lenBytes = new Uint8Array(len.buffer);
  // Asking the kernel directly needs no permission beyond FFI (Deno guards /proc/self/fd
  // behind --allow-all); a non-socket or unused number just fails the call. Descriptors are
  // handed out lowest-first: a new connection's is just above the last one found (they are
  // added), or a hole just freed near it (a connection closed). So the search starts at the
  // last hit and widens both ways: a proxy with ten thousand links finds the next one in a
  // few calls instead of thousands, and every number is still tried when it is elsewhere.
  const matches = (fd: number): boolean => {
    len[0] = addr.length;
    if (libc().getsockname(fd, addr, lenBytes) !== 0 || portOf(addr) !== local.port) return false;
    len[0] = addr.length;
    return libc().getpeername(fd, addr, lenBytes) === 0 && portOf(addr) === remote.port;
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
