/**
 * A loopback TCP listener that accepts every connection and never says a word: the peer a
 * dial meets when the far end takes the connection but never answers (no TLS, no reply).
 *
 * @module
 */

/** Runs `body` with such a listener's port; everything is closed afterwards, also on failure. */
export async function withSilentListener<T>(body: (port: number) => Promise<T>): Promise<T> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) held.push(conn);
  })();
  try {
    return await body(listener.addr.port);
  } finally {
    listener.close();
    await accepting;
    for (const conn of held) conn.close();
  }
}
