import assert from "node:assert/strict";
import { answerDiscover, discoverCa, MAX_CA_CERT_BYTES } from "../../../agent/join/discovery.ts";
import {
  HEADER_LEN,
  MessageType,
  PREAMBLE_LEN,
  StreamReader,
  writeHeader,
  writePreamble,
} from "../../../agent/link/wire.ts";
import { loadOrCreatePki, type ProxyPki } from "../../../proxy/pki/ca.ts";
import { withSilentListener } from "../../support/silent_listener.ts";

const TIMEOUT = { timeoutMs: 5000 };

async function withPki(fn: (pki: ProxyPki) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "vnet_discovery_" });
  try {
    await fn(await loadOrCreatePki(dir));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * A loopback TLS server with the proxy's certificate; `answer` handles each connection after
 * the TLS handshake. Returns the port.
 */
async function withServer(
  pki: ProxyPki,
  answer: (conn: Deno.TlsConn) => Promise<void>,
  fn: (port: number) => Promise<void>,
): Promise<void> {
  const listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: pki.proxyCertPem,
    key: pki.proxyKeyPem,
  });
  const connections: Promise<void>[] = [];
  const serving = (async () => {
    for await (const conn of listener) {
      connections.push(
        answer(conn).catch(() => {/* the client went away */}).finally(() => {
          try {
            conn.close();
          } catch { /* already closed */ }
        }),
      );
    }
  })();
  try {
    await fn(listener.addr.port);
  } finally {
    listener.close();
    await serving;
    await Promise.all(connections);
  }
}

/** What the proxy's accept loop does: read the first message; answer a DISCOVER. */
async function proxyLike(pki: ProxyPki, conn: Deno.TlsConn): Promise<void> {
  const reader = new StreamReader();
  for (;;) {
    const n = await conn.read(reader.space());
    if (n === null) return;
    reader.commit(n);
    const message = reader.next();
    if (message === null) continue;
    if (message.type === MessageType.DISCOVER) await answerDiscover(conn, pki.caPem);
    return;
  }
}

/** Reads the client's preamble and DISCOVER, then sends `bytes` as the answer. */
function rawAnswer(bytes: Uint8Array) {
  return async (conn: Deno.TlsConn) => {
    const buf = new Uint8Array(PREAMBLE_LEN + HEADER_LEN);
    for (let got = 0; got < buf.length;) {
      const n = await conn.read(buf.subarray(got));
      if (n === null) return;
      got += n;
    }
    await conn.write(bytes);
    await conn.read(new Uint8Array(1)); // until the client closes
  };
}

function message(type: number, body: Uint8Array, announced = body.length): Uint8Array {
  const out = new Uint8Array(PREAMBLE_LEN + HEADER_LEN + body.length);
  writePreamble(out, 0);
  writeHeader(out, PREAMBLE_LEN, type, announced);
  out.set(body, PREAMBLE_LEN + HEADER_LEN);
  return out;
}

Deno.test("discoverCa returns the proxy's CA when the hash matches, usable for verified TLS", async () => {
  await withPki(async (pki) => {
    await withServer(pki, (conn) => proxyLike(pki, conn), async (port) => {
      const address = { hostname: "127.0.0.1", port };
      const caPem = await discoverCa(address, pki.caHash, TIMEOUT);
      assert.equal(caPem, pki.caPem);
      const tcp = await Deno.connect(address);
      const tls = await Deno.startTls(tcp, { hostname: "proxy.vnet", caCerts: [caPem] });
      try {
        await tls.handshake();
      } finally {
        tls.close();
      }
    });
  });
});

Deno.test("discoverCa refuses a CA whose hash is not the token's, saying why", async () => {
  await withPki(async (pki) => {
    await withServer(pki, (conn) => proxyLike(pki, conn), async (port) => {
      const wrongHash = "A".repeat(43);
      await assert.rejects(
        discoverCa({ hostname: "127.0.0.1", port }, wrongHash, TIMEOUT),
        (error: Error) => {
          assert.match(
            error.message,
            new RegExp(`^Cannot trust the proxy at 127\\.0\\.0\\.1:${port}`),
          );
          assert.ok(error.message.includes(pki.caHash) && error.message.includes(wrongHash));
          assert.match(error.message, /token belongs to another proxy/);
          assert.match(error.message, /intercepting the connection/);
          return true;
        },
      );
    });
  });
});

Deno.test("discoverCa refuses an answer announcing more than 16 KiB, before reading it", async () => {
  await withPki(async (pki) => {
    const huge = message(MessageType.CA_CERT, new Uint8Array(0), MAX_CA_CERT_BYTES + 1);
    await withServer(pki, rawAnswer(huge), async (port) => {
      await assert.rejects(
        discoverCa({ hostname: "127.0.0.1", port }, pki.caHash, TIMEOUT),
        /body of 16385 bytes exceeds 16384/,
      );
    });
  });
});

Deno.test("discoverCa refuses answers that are not one PEM certificate", async () => {
  await withPki(async (pki) => {
    const encoder = new TextEncoder();
    const answers = [
      [message(MessageType.CA_CERT, encoder.encode(pki.caPem + pki.caPem)), /not one PEM/],
      [message(MessageType.CA_CERT, encoder.encode("hello")), /not one PEM/],
      [
        message(MessageType.PONG, new Uint8Array(8)),
        /expected message type 0x05 or 0x3f, got 0x31/,
      ],
      [encoder.encode("HTTP/1.1 400 Bad Request\r\n\r\n"), /not speaking the vnet protocol/],
      [
        message(MessageType.GOODBYE, encoder.encode(JSON.stringify({ reason: "draining" }))),
        /the proxy refused: draining/,
      ],
    ] as const;
    for (const [bytes, expected] of answers) {
      await withServer(pki, rawAnswer(bytes), async (port) => {
        await assert.rejects(
          discoverCa({ hostname: "127.0.0.1", port }, pki.caHash, TIMEOUT),
          expected,
        );
      });
    }
  });
});

Deno.test("discoverCa times out with the address when nobody answers", async () => {
  await withSilentListener(async (port) => {
    await assert.rejects(
      discoverCa({ hostname: "127.0.0.1", port }, "A".repeat(43), { timeoutMs: 200 }),
      new RegExp(
        `^Error: Cannot discover the CA of 127\\.0\\.0\\.1:${port}: no answer within 200 ms`,
      ),
    );
  });
});

Deno.test("discoverCa reports a refused connection and honours an abort signal", async () => {
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = closed.addr.port;
  closed.close();
  await assert.rejects(
    discoverCa({ hostname: "127.0.0.1", port }, "A".repeat(43), TIMEOUT),
    new RegExp(`Cannot discover the CA of 127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`),
  );

  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) held.push(conn);
  })();
  try {
    const controller = new AbortController();
    const discovering = discoverCa(
      { hostname: "127.0.0.1", port: listener.addr.port },
      "A".repeat(43),
      { timeoutMs: 5000, signal: controller.signal },
    );
    setTimeout(() => controller.abort(), 50);
    await assert.rejects(discovering, { name: "AbortError" });
    controller.abort();
    await assert.rejects(
      discoverCa({ hostname: "127.0.0.1", port: 1 }, "A".repeat(43), {
        timeoutMs: 5000,
        signal: controller.signal,
      }),
      { name: "AbortError" },
    );
  } finally {
    listener.close();
    await accepting;
    for (const conn of held) conn.close();
  }
});

Deno.test("discoverCa refuses a malformed CA hash before connecting", async () => {
  await assert.rejects(
    discoverCa({ hostname: "127.0.0.1", port: 1 }, "abc", TIMEOUT),
    (error: Error) => error instanceof TypeError && /CA hash/.test(error.message),
  );
});

Deno.test("answerDiscover writes preamble and CA_CERT, and refuses an oversized certificate", async () => {
  const chunks: Uint8Array[] = [];
  // A connection that takes 5 bytes per write, as a socket may.
  const conn = {
    write(bytes: Uint8Array) {
      chunks.push(bytes.slice(0, 5));
      return Promise.resolve(Math.min(5, bytes.length));
    },
  };
  await answerDiscover(conn, "PEM");
  const out = new Uint8Array(chunks.flatMap((c) => [...c]));
  const reader = new StreamReader();
  reader.space().set(out);
  reader.commit(out.length);
  const got = reader.next();
  assert.equal(got?.type, MessageType.CA_CERT);
  assert.equal(new TextDecoder().decode(got!.body), "PEM");
  await assert.rejects(answerDiscover(conn, "x".repeat(MAX_CA_CERT_BYTES + 1)), RangeError);
});
