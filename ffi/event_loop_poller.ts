/**
 * Waiting for a device descriptor on the event loop's own thread, so that a frame arriving on
 * an idle TAP wakes the thread that handles it, directly.
 *
 * Deno cannot watch a descriptor it did not open. The portable way to wait for a TAP is a
 * non-blocking FFI poll, which runs on a worker thread: a frame then costs two wake-ups in
 * series (the kernel wakes the worker, the worker wakes the event loop) and one more to hand
 * the next poll to the worker. On a virtual machine with idle cores each wake-up is tens of
 * microseconds, and a ping through the overlay pays four of them more than tinc, which sleeps in
 * one epoll on its TAP and its sockets.
 *
 * This poller sleeps like tinc. While a device is waited for, the event loop's thread blocks in
 * one synchronous poll(2) on the device descriptors and on the event loop's own epoll
 * descriptor, which becomes readable whenever anything Deno watches has news (a socket, a
 * signal, a worker thread finishing, another thread waking the loop):
 *
 *     poll([epoll of the event loop, tap, ...], up to MAX_BLOCK_MS)
 *       a descriptor is readable -> resolve its wait; its owner drains it, does its work and
 *                                   waits again, in microtasks: poll again at once
 *       the event loop has news, the time is up, or an owner went elsewhere
 *     yield one event-loop turn    -> Deno runs its I/O, timers and ops, then we poll again
 *
 * The first branch is the common one: a frame from a TAP can be read and written to a Deno
 * socket without a turn, because writes on Deno's sockets need none: Deno performs them, and
 * settles their promises, within the call when the socket has room (measured; a full socket
 * makes Deno watch it, and its readiness then shows on the epoll descriptor). So the turn is
 * taken for Deno's news, for an owner that went to wait on something of Deno's (or did not come
 * back within {@linkcode EventLoopPollerOptions.comebackMicrotasks}), and at least every
 * {@linkcode MAX_BLOCK_MS}, for its timers.
 *
 * Yielding needs a turn in which Deno polls its reactor; a timer (1 ms granularity, 2 ms in
 * practice) is too slow and a message channel never lets the reactor run. The yield writes one
 * byte on a loopback TCP connection and reads it back: the read can only complete after the
 * reactor has run, and the byte is already there, so the turn never sleeps. (A Unix socket
 * pair was tried: 7 µs per turn in isolation against 12, but in the data-plane bench the RTT
 * p99 rose to 6-7 ms and throughput fell by a third, so loopback TCP it is.)
 *
 * What it costs: Deno timers fire up to {@linkcode MAX_BLOCK_MS} late while a descriptor is
 * idle, and the loop wakes that often when idle. When the pieces cannot be found (no loopback
 * interface, no epoll descriptor that holds our socket), {@linkcode ReadyWaiter} falls back to
 * the worker-thread poll and {@linkcode EventLoopPoller.unavailable} says why.
 *
 * Nothing here is process-wide: whoever owns the descriptors creates one
 * {@linkcode EventLoopPoller}, states how soon its owners come back, and hands it to a
 * {@linkcode ReadyWaiter} per descriptor.
 *
 * @module
 */

import { cString, FdWaiter, libc, O_CLOEXEC, POLLIN } from "./libc.ts";
import { findTcpSocket } from "./socket.ts";

/** Longest time the event loop's thread stays blocked: the bound on how late timers fire. */
export const MAX_BLOCK_MS = 5;

const O_RDONLY = 0;
const decoder = new TextDecoder();

/** One descriptor being waited for. */
interface Waiter {
  fd: number;
  deadline: number;
  resolve(ready: boolean): void;
}

/** The loopback connection a yield goes through, and the event loop's epoll it wakes. */
interface WakePair {
  epollFd: number;
  wakeOut: Deno.TcpConn;
  wakeIn: Deno.TcpConn;
}

/** Options of {@linkcode EventLoopPoller}. */
export interface EventLoopPollerOptions {
  /**
   * Microtask ticks a woken owner gets to come back (wait again) before the poller gives up on
   * it and takes an event-loop turn instead. Too few and every wake-up pays a turn; too many
   * and an owner that went to wait on something of Deno's is served late. It depends on the
   * owner's call chain from a resolved wait to its next wait, so the owner states it.
   */
  comebackMicrotasks: number;
}

/**
 * Waits for descriptors on the event loop's own thread (see the module doc). One serves every
 * descriptor of its owner: two that blocked the thread each on their own descriptors would
 * keep handing it to each other, so an owner makes one per process. It opens its loopback pair
 * on first use and closes it whenever nothing is waited for, so an owner without descriptors
 * (and a test) holds nothing open; if it cannot open it, it never tries again and
 * {@linkcode EventLoopPoller.unavailable} says why.
 *
 * @example Wait for a descriptor Deno does not know
 * ```ts
 * import { EventLoopPoller, ReadyWaiter } from "./event_loop_poller.ts";
 * import { AF_INET, libc, SOCK_DGRAM } from "./libc.ts";
 * const poller = new EventLoopPoller({ comebackMicrotasks: 8 });
 * const fd = libc().socket(AF_INET, SOCK_DGRAM, 0);
 * const ready = await new ReadyWaiter(fd, poller).wait(10); // nothing was sent: times out
 * libc().close(fd);
 * if (ready) throw new Error("an idle socket is not readable");
 * console.log(poller.unavailable || "waited on the event loop's thread");
 * ```
 */
export class EventLoopPoller {
  readonly #comebackMicrotasks: number;
  /** Open from a start or a first wait until nothing is waited for; null otherwise. */
  #pair: WakePair | null = null;
  #opening: Promise<WakePair | null> | undefined;
  #unavailable = "";
  readonly #wakeByte = new Uint8Array(1);
  readonly #wakeBuf = new Uint8Array(64);
  readonly #waiters = new Map<number, Waiter>();
  /** Descriptors whose waits resolved ready and whose owners have not waited again yet. */
  readonly #away = new Set<number>();
  #lastTurn = 0;
  #turns = 0;
  #running = false;
  // struct pollfd[]: [0] the event loop's epoll, then one per waited descriptor. Rebuilt when
  // the waiters change; held here while poll(2) uses it.
  #pollfds = new Uint8Array(64);
  #pollView = new DataView(this.#pollfds.buffer);

  /** @throws {RangeError} when `comebackMicrotasks` is not a non-negative integer. */
  constructor(options: EventLoopPollerOptions) {
    const comeback = options.comebackMicrotasks;
    if (!Number.isInteger(comeback) || comeback < 0) {
      throw new RangeError(
        `Cannot create event-loop poller: comebackMicrotasks must be an integer >= 0, got ${comeback}`,
      );
    }
    this.#comebackMicrotasks = comeback;
  }

  /** Why it cannot run in this process ("" until it was tried, or when it works). */
  get unavailable(): string {
    return this.#unavailable;
  }

  /** Event-loop turns it has taken (each costs a loopback write and read). */
  get turns(): number {
    return this.#turns;
  }

  /** True while its loopback pair is open. */
  get running(): boolean {
    return this.#pair !== null;
  }

  /**
   * Opens the loopback pair now rather than at the first wait, so that a failure shows at once:
   * resolves true, or false with {@linkcode EventLoopPoller.unavailable} saying why.
   */
  async start(): Promise<boolean> {
    return (await this.#open()) !== null;
  }

  /**
   * Resolves true once `fd` is readable (or in error, or closed), false after `timeoutMs`.
   * One wait per descriptor at a time. When the poller cannot run, waits with `fallback`
   * (a worker-thread poll), or rejects saying why when there is none.
   */
  wait(fd: number, timeoutMs: number, fallback?: FdWaiter): Promise<boolean> {
    // The common case, without an extra await: the pair is open.
    if (this.#pair !== null) return this.#waitOpen(fd, timeoutMs);
    return this.#openAndWait(fd, timeoutMs, fallback);
  }

  /** The first wait, or one after the pair was closed: open (or find) a pair first. */
  async #openAndWait(fd: number, timeoutMs: number, fallback?: FdWaiter): Promise<boolean> {
    for (;;) {
      const pair = await this.#open();
      if (pair === null) break;
      // Closed between the open and now (its last waiter left meanwhile): open the next one.
      if (pair === this.#pair) return this.#waitOpen(fd, timeoutMs);
    }
    if (fallback !== undefined) return fallback.wait(timeoutMs);
    throw new Error(`Cannot wait on the event loop's thread: ${this.#unavailable}`);
  }

  #open(): Promise<WakePair | null> {
    this.#opening ??= openWakePair().then((pair) => (this.#pair = pair), (e) => {
      this.#unavailable = (e as Error).message;
      return null;
    });
    return this.#opening;
  }

  #waitOpen(fd: number, timeoutMs: number): Promise<boolean> {
    if (this.#waiters.has(fd)) {
      return Promise.reject(new Error(`Cannot wait for descriptor ${fd}: already waited for`));
    }
    const { promise, resolve } = Promise.withResolvers<boolean>();
    this.#away.delete(fd);
    this.#waiters.set(fd, { fd, deadline: performance.now() + timeoutMs, resolve });
    this.#layout();
    if (!this.#running) this.#run();
    return promise;
  }

  async #run(): Promise<void> {
    this.#running = true;
    try {
      // The caller's turn may have started Deno ops: let them run before blocking.
      await this.#yieldTurn();
      while (this.#waiters.size > 0) {
        const now = performance.now();
        let timeout = MAX_BLOCK_MS;
        for (const w of this.#waiters.values()) timeout = Math.min(timeout, w.deadline - now);
        const n = libc().poll(
          this.#pollfds,
          BigInt(this.#waiters.size + 1),
          Math.max(0, Math.ceil(timeout)),
        );
        const denoNews = n > 0 && this.#pollView.getInt16(6, true) !== 0;
        if (this.#settle(n)) {
          // Let the woken owners do their work and wait again (all in microtasks).
          const comeback = this.#comebackMicrotasks;
          for (let i = 0; i < comeback && this.#away.size > 0; i++) await null;
          const turnDue = performance.now() - this.#lastTurn >= MAX_BLOCK_MS;
          if (!denoNews && !turnDue && this.#away.size === 0) continue;
        }
        await this.#yieldTurn();
      }
    } catch {
      // The loopback pair failed (it cannot, short of the process running out of
      // descriptors): hand every waiter back; their next wait starts afresh.
      for (const w of this.#waiters.values()) w.resolve(false);
      this.#waiters.clear();
    } finally {
      this.#running = false;
      this.#retire();
    }
  }

  /** Resolves the waits whose descriptor is ready or whose time is up; true if any was ready. */
  #settle(n: number): boolean {
    const view = this.#pollView;
    let woke = false;
    if (n > 0) {
      for (let i = 1; i <= this.#waiters.size; i++) {
        if (view.getInt16(i * 8 + 6, true) === 0) continue;
        const w = this.#waiters.get(view.getInt32(i * 8, true));
        if (w === undefined) continue;
        this.#waiters.delete(w.fd);
        this.#away.add(w.fd);
        w.resolve(true);
        woke = true;
      }
    }
    const now = performance.now();
    for (const w of this.#waiters.values()) {
      if (w.deadline <= now) {
        this.#waiters.delete(w.fd);
        w.resolve(false);
      }
    }
    this.#layout();
    return woke;
  }

  #layout(): void {
    const bytes = 8 * (this.#waiters.size + 1);
    if (this.#pollfds.length < bytes) {
      this.#pollfds = new Uint8Array(bytes * 2);
      this.#pollView = new DataView(this.#pollfds.buffer);
    }
    this.#put(0, this.#pair!.epollFd);
    let at = 8;
    for (const fd of this.#waiters.keys()) {
      this.#put(at, fd);
      at += 8;
    }
  }

  /** Writes one struct pollfd { int fd; short events = POLLIN; short revents = 0; }. */
  #put(at: number, fd: number): void {
    this.#pollView.setInt32(at, fd, true);
    this.#pollView.setInt16(at + 4, POLLIN, true);
    this.#pollView.setInt16(at + 6, 0, true);
  }

  /** One event-loop turn in which Deno's reactor runs, without sleeping (see module doc). */
  async #yieldTurn(): Promise<void> {
    this.#away.clear();
    this.#lastTurn = performance.now();
    this.#turns++;
    const pair = this.#pair!;
    await pair.wakeOut.write(this.#wakeByte);
    await pair.wakeIn.read(this.#wakeBuf);
  }

  /** Closes the loopback pair once nothing is waited for; the next wait opens a new one. */
  #retire(): void {
    if (this.#waiters.size > 0) {
      // A wait arrived after the loop's last check: keep serving it.
      this.#run();
      return;
    }
    const pair = this.#pair!;
    this.#pair = null;
    this.#opening = undefined;
    for (const conn of [pair.wakeOut, pair.wakeIn]) {
      try {
        conn.close();
      } catch { /* already closed */ }
    }
  }
}

/** Opens the loopback pair and finds the event loop's epoll; throws saying what is missing. */
async function openWakePair(): Promise<WakePair> {
  let listener: Deno.TcpListener;
  try {
    listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  } catch (e) {
    throw new Error(`no loopback listener (is lo up?): ${(e as Error).message}`);
  }
  let wakeOut: Deno.TcpConn | undefined;
  let wakeIn: Deno.TcpConn | undefined;
  try {
    [wakeOut, wakeIn] = await Promise.all([
      Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
      listener.accept(),
    ]);
    wakeOut.setNoDelay(true);
    const inFd = findTcpSocket(wakeIn.localAddr, wakeIn.remoteAddr);
    if (inFd < 0) throw new Error("cannot find the loopback socket's descriptor");
    const epollFd = findEpollWatching(inFd);
    if (epollFd < 0) throw new Error("no epoll descriptor of this process watches our socket");
    return { epollFd, wakeOut, wakeIn };
  } catch (e) {
    wakeOut?.close();
    wakeIn?.close();
    throw e;
  } finally {
    listener.close();
  }
}

/**
 * The epoll descriptor of this process that watches `fd`, or -1: read from
 * /proc/self/fdinfo through libc (Deno guards /proc/self behind --allow-all).
 */
function findEpollWatching(fd: number): number {
  const link = new Uint8Array(64);
  const info = new Uint8Array(1 << 16);
  const needle = new RegExp(`^tfd:\\s+${fd}\\s`, "m");
  for (let candidate = 0; candidate < 4096; candidate++) {
    const n = Number(
      libc().readlink(cString(`/proc/self/fd/${candidate}`), link, BigInt(link.length)),
    );
    if (n <= 0 || decoder.decode(link.subarray(0, n)) !== "anon_inode:[eventpoll]") continue;
    const file = libc().open(cString(`/proc/self/fdinfo/${candidate}`), O_RDONLY | O_CLOEXEC, 0);
    if (file < 0) continue;
    try {
      const got = Number(libc().read(file, info, BigInt(info.length)));
      if (got > 0 && needle.test(decoder.decode(info.subarray(0, got)))) return candidate;
    } finally {
      libc().close(file);
    }
  }
  return -1;
}

/**
 * Waits for one descriptor: through `poller` when one is given and it can run in this process,
 * otherwise with a poll on a worker thread ({@linkcode FdWaiter}), the portable way.
 *
 * @example The worker-thread poll, when no poller is given
 * ```ts
 * import { ReadyWaiter } from "./event_loop_poller.ts";
 * import { AF_INET, libc, SOCK_DGRAM } from "./libc.ts";
 * const fd = libc().socket(AF_INET, SOCK_DGRAM, 0);
 * const ready = await new ReadyWaiter(fd).wait(10);
 * libc().close(fd);
 * if (ready) throw new Error("an idle socket is not readable");
 * ```
 */
export class ReadyWaiter {
  readonly #fd: number;
  readonly #poller: EventLoopPoller | null;
  readonly #fallback: FdWaiter;

  constructor(fd: number, poller: EventLoopPoller | null = null) {
    this.#fd = fd;
    this.#poller = poller;
    this.#fallback = new FdWaiter(fd);
  }

  /** True when readable before `timeoutMs` (or in error), false on timeout. */
  wait(timeoutMs: number): Promise<boolean> {
    if (this.#poller === null) return this.#fallback.wait(timeoutMs);
    return this.#poller.wait(this.#fd, timeoutMs, this.#fallback);
  }
}
