/**
 * A node:tls stream ({@linkcode nodeSocketConn}) whose socket is destroyed with writes still
 * pending: node cancels them (ECANCELED, EPIPE or ECONNRESET), and each failure must come
 * back through the `write()` promise its writer awaits, as the end of the connection, never as
 * an unhandled rejection (the test runner fails a test on one, as it would end the agent).
 * Loopback only; each wait is bounded, which also keeps the event loop alive as the agent's
 * timers do (node's pending write alone does not).
 */
import { assert, assertEquals, assertRejects } from "../../support/assert.ts";
import * as net from "node:net";
import * as tls from "node:tls";
import { nodeSocketConn, nodeTlsConn } from "../../../agent/link/node_tls_conn.ts";
import type { NetConn } from "../../../agent/link/transport.ts";
import { withSilentListener } from "../../support/silent_listener.ts";
import { loadOrCreatePki } from "../../../proxy/pki/ca.ts";

type Pki = Awaited<ReturnType<typeof loadOrCreatePki>>;

const BIG = 32 * 1024 * 1024;

/** `p`, or a failure naming `what` after `ms`. */
async function within<T>(p: Promise<T>, what: string, ms = 5000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) =>
    timer = setTimeout(() => reject(new Error(`${what}: still pending after ${ms} ms`)), ms)
  );
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** How `p` ended: "ok", or "failed" with the error's message. */
function outcome(p: Promise<unknown>): Promise<string> {
  return p.then(() => "ok", (e) => `failed: ${(e as Error).message}`);
}

/** Runs `body` with a PKI in a temporary state dir. */
async function withPki(body: (pki: Pki) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await body(await loadOrCreatePki(dir));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A node:tls client (CA discovery's dial) to a Deno TLS listener that never reads. */
async function dialed(pki: Pki): Promise<{ client: NetConn; server: Deno.Conn; stop(): void }> {
  const listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: pki.proxyCertPem,
    key: pki.proxyKeyPem,
  });
  const accepted = listener.accept();
  const client = await dialLocal(listener.addr.port, 5000, "timed out");
  return { client, server: await accepted, stop: () => listener.close() };
}

/** CA discovery's dial to a loopback port, failing with `timeout` after `ms` per stage. */
function dialLocal(port: number, ms: number, timeout: string): Promise<NetConn> {
  return nodeTlsConn({ hostname: "127.0.0.1", port }, "proxy.vnet", ms, () => new Error(timeout));
}

/**
 * Starts a write too large to be taken at once, ends the connection with `end` while it is
 * pending, and says how the write ended (bounded).
 */
async function writePendingWhen(conn: NetConn, end: () => void): Promise<string> {
  const pending = outcome(conn.write(new Uint8Array(BIG)));
  await new Promise((r) => setTimeout(r, 50));
  end();
  return await within(pending, "the pending write");
}

/** Lets any stray rejection surface inside this test. */
const settle = () => new Promise((r) => setTimeout(r, 100));

Deno.test("node tls conn: closing with a large write pending fails that write, nothing unhandled", async () => {
  await withPki(async (pki) => {
    const { client, server, stop } = await dialed(pki);
    const result = await writePendingWhen(client, () => client.close());
    assert(result.startsWith("failed"), `the pending write ended as ${result}`);
    await assertRejects(() => client.write(new Uint8Array(10)), Deno.errors.BadResource);
    assertEquals(await within(client.read(new Uint8Array(10)), "a read after close"), null);
    client.close(); // a second close does nothing
    server.close();
    stop();
    await settle();
  });
});

Deno.test("node tls conn: the peer going away with a large write pending ends the conn, nothing unhandled", async () => {
  await withPki(async (pki) => {
    const { client, server, stop } = await dialed(pki);
    const result = await writePendingWhen(client, () => server.close());
    assert(result.startsWith("failed"), `the pending write ended as ${result}`);
    // The connection is over: reads see the peer's end, later writes fail at once.
    assertEquals(await within(client.read(new Uint8Array(10)), "a read after the end"), null);
    const later = await within(outcome(client.write(new Uint8Array(10))), "a later write");
    assert(later.startsWith("failed"), `a write after the end ended as ${later}`);
    client.close();
    stop();
    await settle();
  });
});

Deno.test("node tls conn: a punched connection torn down under a stream of writes settles each one", async () => {
  await withPki(async (pki) => {
    // The tls-client side of agent/fastpath/punch.ts: TLS over a connected node:net socket.
    const theirs: tls.TLSSocket[] = [];
    const server = tls.createServer({ cert: pki.proxyCertPem, key: pki.proxyKeyPem }, (s) => {
      s.on("error", () => {}); // the far end's own failure is not under test
      theirs.push(s);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const port = (server.address() as net.AddressInfo).port;
    const raw = net.connect({ host: "127.0.0.1", port });
    await new Promise((r) => raw.once("connect", r));
    const ours = tls.connect({ socket: raw, servername: "proxy.vnet", rejectUnauthorized: false });
    await new Promise((r) => ours.once("secureConnect", r));
    const conn = nodeSocketConn(ours, { hostname: "127.0.0.1", port });
    // Writers as a link's flush loop: several batches in flight, none read by the far end.
    const writes = Array.from({ length: 8 }, () => outcome(conn.write(new Uint8Array(BIG / 8))));
    await new Promise((r) => setTimeout(r, 50));
    raw.destroy(); // the TCP connection under the TLS one goes
    const results = await within(Promise.all(writes), "the writes in flight");
    assert(results.some((r) => r.startsWith("failed")), results.join());
    await within(outcome(conn.read(new Uint8Array(10))), "a read after the end");
    assert((await outcome(conn.write(new Uint8Array(10)))).startsWith("failed"));
    conn.close();
    for (const s of theirs) s.destroy();
    await new Promise((r) => server.close(() => r(null)));
    await settle();
  });
});

Deno.test("node tls conn: a peer that accepts but never answers TLS fails with the dial's timeout", async () => {
  // A plain TCP listener: the connect succeeds, the TLS handshake never finishes.
  await withSilentListener(async (port) => {
    const t0 = performance.now();
    const err = await dialLocal(port, 300, "no TLS in time").then(() => null, (e: Error) => e);
    assertEquals(err?.message, "no TLS in time");
    const ms = performance.now() - t0;
    assert(ms >= 280 && ms < 3000, `after its bound, not at once: ${ms} ms`);
  });
});
