/**
 * Commands run inside a QEMU guest through its serial console, where the guest's init left a
 * busybox shell: what a person typing at `virsh console` would do, with the exit code read
 * back from a marker line.
 *
 *     "stty -echo"                      (once: the transcript then holds only output)
 *     "CMD; echo @@N:$?@@"  ──ttyS0──>  sh  ──>  output… "@@N:0@@"
 *
 * @module
 */

import { UnixText } from "./unix_text.ts";

/** What a command printed and how it exited. */
export interface GuestRun {
  code: number;
  output: string;
}

/** A shell on a guest's serial console. */
export class GuestConsole {
  readonly #io: UnixText;
  #seq = 0;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(io: UnixText) {
    this.#io = io;
  }

  /** Connects to the console socket (`-chardev socket,path=PATH,server=on`) and quiets echo. */
  static async connect(path: string, timeoutMs = 10_000): Promise<GuestConsole> {
    const c = new GuestConsole(await UnixText.connect(path, timeoutMs));
    await c.run("stty -echo", timeoutMs);
    return c;
  }

  /** Runs `command` in the guest's shell and waits up to `timeoutMs` for it to finish. */
  run(command: string, timeoutMs = 30_000): Promise<GuestRun> {
    const go = async (): Promise<GuestRun> => {
      const n = ++this.#seq;
      // The marker's exit code is expanded by the shell, so the echoed command line (before
      // `stty -echo` takes effect) can never match the pattern.
      const marker = new RegExp(`@@${n}:(\\d+)@@`);
      await this.#io.write(`${command}; echo "@@${n}:$?@@"\n`);
      return await this.#io.take(
        (text) => {
          const m = marker.exec(text);
          if (!m) return null;
          return {
            value: { code: Number(m[1]), output: clean(text.slice(0, m.index)) },
            consumed: m.index + m[0].length,
          };
        },
        timeoutMs,
        `the end of "${command}"`,
      );
    };
    const p = this.#queue.then(go, go);
    this.#queue = p.catch(() => {});
    return p;
  }

  /** Closes the console connection (the guest keeps running). */
  close(): Promise<void> {
    return this.#io.close();
  }
}

/** The transcript without carriage returns, terminal escapes and a leading prompt. */
function clean(text: string): string {
  return text.replaceAll("\r", "")
    // deno-lint-ignore no-control-regex
    .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "")
    .replace(/^(\/ # )+/gm, "")
    .trim();
}
