/**
 * A text conversation over a Unix socket that QEMU serves (its QMP monitor, a guest's serial
 * console): connect once QEMU has created the socket, write text, and wait for what arrives.
 * QMP reads it as lines of JSON, the console as a shell transcript.
 *
 * @module
 */

/** Thrown when what was awaited did not arrive in time or the socket closed first. */
export class UnixTextTimeout extends Error {
  override name = "UnixTextTimeout";
}

/** The read side: text received so far, consumed from the front by the reader. */
export class UnixText {
  readonly path: string;
  readonly #conn: Deno.UnixConn;
  #buffer = "";
  #closed = false;
  #wake: (() => void) | null = null;
  readonly #done: Promise<void>;

  private constructor(path: string, conn: Deno.UnixConn) {
    this.path = path;
    this.#conn = conn;
    this.#done = this.#pump();
  }

  /** Connects to `path`, retrying while QEMU has not created it yet, for up to `timeoutMs`. */
  static async connect(path: string, timeoutMs = 10_000): Promise<UnixText> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      try {
        return new UnixText(path, await Deno.connect({ transport: "unix", path }));
      } catch (e) {
        if (Date.now() > until) {
          throw new UnixTextTimeout(
            `Cannot connect to ${path} within ${timeoutMs} ms: ${(e as Error).message}`,
          );
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  async #pump(): Promise<void> {
    const decoder = new TextDecoder();
    const buf = new Uint8Array(16384);
    try {
      for (;;) {
        const n = await this.#conn.read(buf);
        if (n === null) break;
        this.#buffer += decoder.decode(buf.subarray(0, n), { stream: true });
        this.#wake?.();
      }
    } catch { /* closed under us */ }
    this.#closed = true;
    this.#wake?.();
  }

  /** True once the peer closed the socket (QEMU quit) or {@linkcode close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Sends `text`. */
  async write(text: string): Promise<void> {
    const bytes = new TextEncoder().encode(text);
    for (let at = 0; at < bytes.length;) at += await this.#conn.write(bytes.subarray(at));
  }

  /**
   * Waits until `take` finds what it wants in the buffered text: it returns the value and how
   * many characters to consume, or null to keep waiting.
   */
  async take<T>(
    take: (text: string) => { value: T; consumed: number } | null,
    timeoutMs: number,
    what: string,
  ): Promise<T> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const got = take(this.#buffer);
      if (got) {
        this.#buffer = this.#buffer.slice(got.consumed);
        return got.value;
      }
      const left = until - Date.now();
      if (this.#closed || left <= 0) {
        throw new UnixTextTimeout(
          `Cannot read ${what} from ${this.path}: ${
            this.#closed ? "the socket closed" : `nothing within ${timeoutMs} ms`
          }; last text: ${JSON.stringify(this.#buffer.slice(-400))}`,
        );
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(t);
          this.#wake = null;
          resolve();
        };
      });
    }
  }

  /** Closes the socket; safe to call twice. */
  async close(): Promise<void> {
    try {
      this.#conn.close();
    } catch { /* closed */ }
    await this.#done;
  }
}
