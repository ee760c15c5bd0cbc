/**
 * The proxy's event stream: hosts joining and leaving, fast paths changing phase, topology
 * changes, adaptation reactions (one union, {@linkcode VnetEvent} in event_types.ts). A bounded
 * list of recent events for `GET /api/events`, and live subscribers for the server-sent-events
 * stream the live page and scripts follow.
 *
 * @module
 */

import type { VnetEvent } from "./event_types.ts";

/** Recent events kept. */
export const MAX_RECENT_EVENTS = 500;

/**
 * Recent events and live subscribers.
 *
 * @example
 * ```ts
 * import { EventHub } from "./events.ts";
 * const hub = new EventHub();
 * const seen: string[] = [];
 * hub.subscribe((e) => seen.push(e.type));
 * hub.emit({ type: "host", at: 1, host: "h1", state: "joined", from: "10.0.0.1" });
 * if (seen[0] !== "host" || hub.recent().length !== 1) throw new Error();
 * ```
 */
export class EventHub {
  readonly #recent: VnetEvent[] = [];
  readonly #subscribers = new Set<(e: VnetEvent) => void>();

  /** Records and delivers an event. A failing subscriber is dropped, never the caller. */
  emit(event: VnetEvent): void {
    this.#recent.push(event);
    if (this.#recent.length > MAX_RECENT_EVENTS) this.#recent.shift();
    for (const fn of this.#subscribers) {
      try {
        fn(event);
      } catch {
        this.#subscribers.delete(fn);
      }
    }
  }

  /** Recent events, oldest first. */
  recent(): VnetEvent[] {
    return [...this.#recent];
  }

  /** Calls `fn` for every new event; returns the unsubscribe function. */
  subscribe(fn: (e: VnetEvent) => void): () => void {
    this.#subscribers.add(fn);
    return () => this.#subscribers.delete(fn);
  }

  /** Live subscribers (for metrics). */
  get subscribers(): number {
    return this.#subscribers.size;
  }

  /**
   * A `text/event-stream` response that sends every new event (and a comment every 15 s so
   * proxies keep the connection) until the client goes away.
   */
  sse(signal: AbortSignal): Response {
    const encoder = new TextEncoder();
    let unsubscribe = () => {};
    let ping: ReturnType<typeof setInterval> | undefined;
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        const send = (text: string) => {
          try {
            controller.enqueue(encoder.encode(text));
          } catch {
            stop();
          }
        };
        const stop = () => {
          unsubscribe();
          clearInterval(ping);
          try {
            controller.close();
          } catch { /* closed */ }
        };
        send(": vnet events\n\n");
        unsubscribe = this.subscribe((e) =>
          send(`event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`)
        );
        ping = setInterval(() => send(": keepalive\n\n"), 15_000);
        signal.addEventListener("abort", stop, { once: true });
      },
      cancel: () => {
        unsubscribe();
        clearInterval(ping);
      },
    });
    return new Response(body, {
      headers: { "content-type": "text/event-stream", "cache-control": "no-store" },
    });
  }
}
