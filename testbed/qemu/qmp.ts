/**
 * A client for QEMU's machine protocol (QMP): the JSON monitor that libvirt drives. The lab
 * uses it as a hypervisor manager would: query the guest, start, watch and cancel a live
 * migration, and quit a source once its guest runs elsewhere.
 *
 *     QEMU ── greeting {"QMP":…} ──> client ── qmp_capabilities ──> command mode
 *     client ── {"execute":X,"id":N} ──> QEMU ── {"return":…,"id":N} | {"error":…,"id":N}
 *     QEMU ── {"event":E,"timestamp":{seconds,microseconds},"data":…} ──> client (any time)
 *
 * Event timestamps are QEMU's own wall clock, so "the guest resumed on the destination" is
 * known to the microsecond, not to the client's polling interval.
 *
 * @module
 */

import { UnixText } from "./unix_text.ts";

/** An asynchronous event QEMU reported. */
export interface QmpEvent {
  event: string;
  /** QEMU's wall-clock time of the event, ms since the epoch. */
  at: number;
  data: Record<string, unknown>;
}

/** QEMU refused a command. */
export class QmpError extends Error {
  override name = "QmpError";
  /** QMP's error class, e.g. `GenericError`, `CommandNotFound`. */
  readonly errorClass: string;
  constructor(command: string, errorClass: string, desc: string) {
    super(`Cannot run QMP ${command}: ${errorClass}: ${desc}`);
    this.errorClass = errorClass;
  }
}

type Reply =
  | { kind: "return"; id: number; value: unknown }
  | { kind: "error"; id: number; errorClass: string; desc: string }
  | { kind: "event"; event: QmpEvent }
  | { kind: "greeting" };

/** One line of QMP output, parsed; null for a line that is none of QMP's messages. */
export function parseQmpLine(line: string): Reply | null {
  let m: Record<string, unknown>;
  try {
    m = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof m !== "object" || m === null) return null;
  if ("QMP" in m) return { kind: "greeting" };
  if ("event" in m && typeof m.event === "string") {
    const ts = m.timestamp as { seconds?: number; microseconds?: number } | undefined;
    return {
      kind: "event",
      event: {
        event: m.event,
        at: (ts?.seconds ?? 0) * 1000 + (ts?.microseconds ?? 0) / 1000,
        data: (m.data ?? {}) as Record<string, unknown>,
      },
    };
  }
  if (typeof m.id !== "number") return null;
  if ("return" in m) return { kind: "return", id: m.id, value: m.return };
  if ("error" in m) {
    const e = m.error as { class?: string; desc?: string };
    return { kind: "error", id: m.id, errorClass: e.class ?? "?", desc: e.desc ?? "" };
  }
  return null;
}

/** A QMP session in command mode. */
export class QmpClient {
  readonly #io: UnixText;
  #nextId = 1;
  /** Every event seen so far, oldest first. */
  readonly events: QmpEvent[] = [];
  #returns = new Map<number, Reply>();
  /** One command at a time: QMP answers in order, and the reader is shared. */
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(io: UnixText) {
    this.#io = io;
  }

  /** Connects to QEMU's `-qmp unix:PATH,server=on,wait=off` socket and enters command mode. */
  static async connect(path: string, timeoutMs = 10_000): Promise<QmpClient> {
    const client = new QmpClient(await UnixText.connect(path, timeoutMs));
    await client.#next((r) => r.kind === "greeting", timeoutMs, "the QMP greeting");
    await client.execute("qmp_capabilities");
    return client;
  }

  /** Reads replies until `want` accepts one; events met on the way are recorded. */
  async #next(want: (r: Reply) => boolean, timeoutMs: number, what: string): Promise<Reply> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      // One line at a time, each consumed as it is read, so nothing is handled twice.
      const line = await this.#io.take(
        (text) => {
          const nl = text.indexOf("\n");
          return nl < 0 ? null : { value: text.slice(0, nl), consumed: nl + 1 };
        },
        Math.max(0, until - Date.now()),
        what,
      );
      const r = parseQmpLine(line.trim());
      if (!r) continue;
      if (r.kind === "event") this.events.push(r.event);
      if (r.kind === "return" || r.kind === "error") this.#returns.set(r.id, r);
      if (want(r)) return r;
    }
  }

  /** Runs `command` with `args`; resolves to its return value, throws QmpError if refused. */
  execute<T = unknown>(
    command: string,
    args?: Record<string, unknown>,
    timeoutMs = 10_000,
  ): Promise<T> {
    const run = async (): Promise<T> => {
      const id = this.#nextId++;
      await this.#io.write(JSON.stringify({ execute: command, arguments: args, id }) + "\n");
      const r = this.#returns.get(id) ??
        await this.#next((r) => "id" in r && r.id === id, timeoutMs, `the reply to ${command}`);
      this.#returns.delete(id);
      if (r.kind === "error") throw new QmpError(command, r.errorClass, r.desc);
      return (r as { value: T }).value;
    };
    const p = this.#queue.then(run, run);
    this.#queue = p.catch(() => {});
    return p;
  }

  /**
   * Waits for an event named `name` (events already seen after index `since` count) for up to
   * `timeoutMs`; returns it. Commands and waits take turns: QMP's reader is shared.
   */
  waitEvent(name: string, timeoutMs: number, since = 0): Promise<QmpEvent> {
    const seen = () => this.events.slice(since).find((e) => e.event === name);
    const run = async (): Promise<QmpEvent> => {
      if (!seen()) {
        await this.#next(
          (r) => r.kind === "event" && r.event.event === name && !!seen(),
          timeoutMs,
          `the ${name} event`,
        );
      }
      return seen()!;
    };
    const p = this.#queue.then(run, run);
    this.#queue = p.catch(() => {});
    return p;
  }

  /** True once QEMU closed the socket (it quit). */
  get closed(): boolean {
    return this.#io.closed;
  }

  /** Closes the session (QEMU keeps running). */
  close(): Promise<void> {
    return this.#io.close();
  }
}
