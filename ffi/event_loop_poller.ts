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
 *       a device is readable   -> resolve its wait; its reader drains it, forwards the
 *                                 frames and waits again, in microtasks: poll again at once
 *       the event loop has news, the time is up, or an owner went elsewhere
 *     yield one event-loop turn  -> Deno runs its I/O, timers and ops, then we poll again
 *
 * The first branch is the common one: a frame from a TAP is read, forwarded and written to its
 * link's socket without a turn, because writes on Deno's sockets need none: Deno performs them,
 * and settles their promises, within the call when the socket has room (measured; a full
 * socket makes Deno watch it, and its readiness then shows on the epoll descriptor). So the
 * turn is taken for Deno's news, for an owner that went to wait on something of Deno's, and at
 * least every {@linkcode MAX_BLOCK_MS}, for its timers.
 *
 * Yielding needs a turn in which Deno polls its reactor; a timer (1 ms granularity, 2 ms in
 * practice) is too slow and a message channel never lets the reactor run. The yield writes one
 * byte on a loopback TCP connection and reads it back: the read can only complete after the
 * reactor has run, and the byte is already there, so the turn never sleeps. (A Unix socket
 * pair was tried: 7 µs per turn in isolation against 12, but in the data-plane bench the RTT
 * p99 rose to 6-7 ms and throughput fell by a third, so loopback TCP it is.)
 *
 * What it costs: Deno timers fire up to {@linkcode MAX_BLOCK_MS} late while a device is idle
 * (nothing in the agent needs finer timers), and the loop wakes that often when idle.
 * When the pieces cannot be found (no loopback interface, no epoll descriptor that holds our
 * socket), {@linkcode ReadyWaiter} falls back to the worker-thread poll.
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

/**
 * Microtask ticks a woken owner gets to come back (wait again) before the poller gives up on
 * it and takes an event-loop turn instead. A device reader comes back in about 10 (wait ->
 * read -> pump -> forward -> flush -> read -> wait).
 */
const COMEBACK_MICROTASKS = 64;

/**
 * Process-wide: one blocking poll serves every device, since two loops that each blocked on
 * their own descriptor would starve each other. It runs only while some descriptor is waited
 * for, and closes its loopback pair when none is, so an agent without devices (and a test)
 * holds nothing open.
 */
export class EventLoopPoller {
  readonly #epollFd: number;
  readonly #wakeOut: Deno.TcpConn;
  readonly #wakeIn: Deno.TcpConn;
  readonly #wakeByte = new Uint8Array(1);
  readonly #wakeBuf = new Uint8Array(64);
  readonly #waiters = new Map<number, Waiter>();
  /** Descriptors whose waits resolved ready and whose owners have not waited again yet. */
  readonly #away = new Set<number>();
  #lastTurn = 0;
  #turns = 0;
  #running = false;
  #retired = false;
  // struct pollfd[]: [0] the event loop's epoll, then one per waited descriptor. Rebuilt when
  // the waiters change; held here while poll(2) uses it.
  #pollfds = new Uint8Array(64);
  #pollView = new DataView(this.#pollfds.buffer);

  private constructor(epollFd: number, wakeOut: Deno.TcpConn, wakeIn: Deno.TcpConn) {
    this.#epollFd = epollFd;
    this.#wakeOut = wakeOut;
    this.#wakeIn = wakeIn;
  }

  /**
   * The process's poller, or null when this process cannot have one (the reason is in
   * {@linkcode EventLoopPoller.unavailable}). Started on first use.
   */
  static get(): Promise<EventLoopPoller | null> {
    current ??= EventLoopPoller.#start().then((poller) => (live = poller), (e) => {
      unavailableReason = (e as Error).message;
      return null;
    });
    return current;
  }

  /** Event-loop turns it has taken (each costs a loopback write and read). */
  get turns(): number {
    return this.#turns;
  }

  /** True once it closed its loopback pair; {@linkcode get} then gives a new poller. */
  get retired(): boolean {
    return this.#retired;
  }

  /** Why {@linkcode get} gave null ("" until it was tried, or when it worked). */
  static get unavailable(): string {
    return unavailableReason;
  }

  static async #start(): Promise<EventLoopPoller> {
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
      return new EventLoopPoller(epollFd, wakeOut, wakeIn);
    } catch (e) {
      wakeOut?.close();
      wakeIn?.close();
      throw e;
    } finally {
      listener.close();
    }
  }

  /**
   * Resolves true once `fd` is readable (or in error, or closed), false after `timeoutMs`.
   * One wait per descriptor at a time.
   */
  wait(fd: number, timeoutMs: number): Promise<boolean> {
    if (this.#retired) return Promise.reject(new Error("Cannot wait: the poller was retired"));
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
          for (let i = 0; i < COMEBACK_MICROTASKS && this.#away.size > 0; i++) await null;
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
    this.#put(0, this.#epollFd);
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
    await this.#wakeOut.write(this.#wakeByte);
    await this.#wakeIn.read(this.#wakeBuf);
  }

  /** Closes the loopback pair once nothing is waited for; the next wait starts a new one. */
  #retire(): void {
    if (this.#waiters.size > 0) {
      // A wait arrived after the loop's last check: keep serving it.
      this.#run();
      return;
    }
    current = undefined;
    if (live === this) live = null;
    this.#retired = true;
    for (const conn of [this.#wakeOut, this.#wakeIn]) {
      try {
        conn.close();
      } catch { /* already closed */ }
    }
  }
}

let current: Promise<EventLoopPoller | null> | undefined;
/** The started, not yet retired poller: devices wait on it without an extra await. */
let live: EventLoopPoller | null = null;
let unavailableReason = "";

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
 * Waits for one descriptor: through the {@linkcode EventLoopPoller} when this process has
 * one, otherwise with a poll on a worker thread ({@linkcode FdWaiter}).
 */
export class ReadyWaiter {
  readonly #fd: number;
  readonly #fallback: FdWaiter;

  constructor(fd: number) {
    this.#fd = fd;
    this.#fallback = new FdWaiter(fd);
  }

  /** True when readable before `timeoutMs` (or in error), false on timeout. */
  wait(timeoutMs: number): Promise<boolean> {
    if (!useEventLoopPoller) return this.#fallback.wait(timeoutMs);
    if (live !== null && !live.retired) return live.wait(this.#fd, timeoutMs);
    return this.#startAndWait(timeoutMs);
  }

  /** The first wait, or one after the poller retired: start (or find) a poller first. */
  async #startAndWait(timeoutMs: number): Promise<boolean> {
    while (useEventLoopPoller) {
      const poller = await EventLoopPoller.get();
      if (poller === null) break;
      // Retired between get() and now (its last waiter left meanwhile): take the next one.
      if (!poller.retired) return poller.wait(this.#fd, timeoutMs);
    }
    return this.#fallback.wait(timeoutMs);
  }
}

let useEventLoopPoller = true;

/**
 * How devices are waited for right now, for status pages: `event-loop`, `thread`, or
 * `thread (fallback: <reason>)` when the event-loop poller could not start.
 */
export function deviceWaitMode(): string {
  if (!useEventLoopPoller) return "thread";
  return unavailableReason ? `thread (fallback: ${unavailableReason})` : "event-loop";
}

/**
 * Chooses how devices wait: on the event loop's thread (the default) or with a poll on a
 * worker thread (the portable way, kept for comparison and as the fallback).
 */
export function setDeviceWait(mode: "event-loop" | "thread"): void {
  useEventLoopPoller = mode === "event-loop";
}
