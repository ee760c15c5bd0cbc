/**
 * How the agent waits for an idle device (the `deviceWait` setting), as one object that
 * whoever opens the devices builds and hands to each of them:
 *
 *     openConfiguredDevice(config)
 *       new DeviceWait(config.deviceWait)     event-loop: one EventLoopPoller for the process
 *         TapDevice / PcapDevice              each waits through wait.forDescriptor(its fd)
 *       device.waitMode                       what the host's status API shows as `deviceWait`
 *
 * The FFI poller knows nothing of the agent; what it needs to know about the agent's reader,
 * how soon a woken reader waits again, is stated here ({@linkcode DEVICE_COMEBACK_MICROTASKS}).
 *
 * @module
 */

import { EventLoopPoller, ReadyWaiter } from "../../ffi/event_loop_poller.ts";

/**
 * Microtask ticks a woken device reader gets to wait again before the event-loop poller takes
 * a turn instead. The agent's reader comes back in about 10: the wait resolves -> `read` drains
 * the device -> `pumpDevice` forwards the batch -> the links' flushes run (microtasks) -> the
 * pump's `await null` -> `read` finds the device empty -> it waits again. 64 leaves room for a
 * batch that touches several links, and still gives up on a reader that went elsewhere
 * within microseconds.
 */
export const DEVICE_COMEBACK_MICROTASKS = 64;

/** The values of the `deviceWait` setting. */
export type DeviceWaitMode = "event-loop" | "thread";

/** Options of {@linkcode DeviceWait}. */
export interface DeviceWaitOptions {
  /** Overrides {@linkcode DEVICE_COMEBACK_MICROTASKS}, for a reader with another call chain. */
  comebackMicrotasks?: number;
}

/**
 * The way devices are waited for: on the event loop's own thread (a frame on an idle TAP wakes
 * the agent's thread directly) or with a poll on a worker thread (portable; two wake-ups in
 * series per frame). In `event-loop` mode it holds the process's one {@linkcode EventLoopPoller}
 * and falls back to the worker thread, saying why, when that poller cannot run.
 *
 * @example Waiting for a descriptor on a worker thread
 * ```ts
 * import { DeviceWait } from "./device_wait.ts";
 * import { AF_INET, libc, SOCK_DGRAM } from "../../ffi/libc.ts";
 * const wait = new DeviceWait("thread");
 * const fd = libc().socket(AF_INET, SOCK_DGRAM, 0);
 * const ready = await wait.forDescriptor(fd).wait(10); // nothing was sent: times out
 * libc().close(fd);
 * if (ready || wait.mode !== "thread") throw new Error(wait.mode);
 * ```
 */
export class DeviceWait {
  readonly #poller: EventLoopPoller | null;

  /** @throws {RangeError} for a comebackMicrotasks that is not a non-negative integer. */
  constructor(mode: DeviceWaitMode, options: DeviceWaitOptions = {}) {
    this.#poller = mode === "event-loop"
      ? new EventLoopPoller({
        comebackMicrotasks: options.comebackMicrotasks ?? DEVICE_COMEBACK_MICROTASKS,
      })
      : null;
  }

  /**
   * How devices are waited for right now, for status pages: `event-loop`, `thread`, or
   * `thread (fallback: <reason>)` once the event-loop poller failed to start.
   */
  get mode(): string {
    if (this.#poller === null) return "thread";
    const reason = this.#poller.unavailable;
    return reason ? `thread (fallback: ${reason})` : "event-loop";
  }

  /** A waiter for one device descriptor, through this way of waiting. */
  forDescriptor(fd: number): ReadyWaiter {
    return new ReadyWaiter(fd, this.#poller);
  }

  /**
   * Starts the event-loop poller now rather than at the first wait, so that a fallback shows
   * once, at start-up: resolves to the reason it cannot run, or null (also in `thread` mode).
   */
  async start(): Promise<string | null> {
    if (this.#poller === null || await this.#poller.start()) return null;
    return this.#poller.unavailable;
  }
}
