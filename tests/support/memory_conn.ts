/**
 * An in-memory byte stream for tests: the test pushes what the peer "sends", the code under
 * test reads it and writes answers the test can inspect. Implements the links' `Conn`.
 *
 * @module
 */

import type { Conn } from "../../agent/link/link.ts";

/** One side of a fake connection. */
export class MemoryConn implements Conn {
  readonly written: Uint8Array[] = [];
  #chunks: Uint8Array[] = [];
  #closed = false;
  #wake: (() => void) | null = null;
  /** When true, reads end (null) once the pushed bytes are consumed. */
  endAfterData = false;

  /** Bytes the peer sends. */
  push(bytes: Uint8Array): void {
    this.#chunks.push(bytes);
    this.#wake?.();
  }

  async read(p: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#closed || this.endAfterData) return null;
      await new Promise<void>((r) => this.#wake = r);
      this.#wake = null;
    }
    const c = this.#chunks[0];
    const n = Math.min(c.length, p.length);
    p.set(c.subarray(0, n));
    if (n === c.length) this.#chunks.shift();
    else this.#chunks[0] = c.subarray(n);
    return n;
  }

  write(p: Uint8Array): Promise<number> {
    if (this.#closed) return Promise.reject(new Error("closed"));
    this.written.push(p.slice());
    return Promise.resolve(p.length);
  }

  close(): void {
    this.#closed = true;
    this.#wake?.();
  }

  get closed(): boolean {
    return this.#closed;
  }
}
