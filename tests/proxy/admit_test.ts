/**
 * The proxy's admission gives the front door's handshake slot back as soon as the peer has
 * proven its credential, before the certificate and the host book's write (which a storm
 * queues behind the disk), and never for a peer that has not proven one.
 */
import { assertEquals, assertRejects } from "../support/assert.ts";
import { MemoryConn } from "../support/memory_conn.ts";
import { encodeStream } from "../support/wire.ts";
import { systemClock } from "../../agent/clock.ts";
import { generateHostKey } from "../../agent/join/host_key.ts";
import { joinProof } from "../../agent/join/proof.ts";
import { createJoinToken } from "../../agent/join/token.ts";
import { HEADER_LEN, MessageType, StreamReader, writeHeader } from "../../agent/link/wire.ts";
import { AdmissionRefused, admit } from "../../proxy/admit.ts";

const json = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));

/** One message without the preamble (the stream's later messages). */
function message(type: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER_LEN + body.length);
  writeHeader(out, 0, type, body.length);
  out.set(body, HEADER_LEN);
  return out;
}

/** The challenge in the proxy's HELLO, once it has written it. */
async function challengeOf(conn: MemoryConn): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const r = new StreamReader();
    for (const chunk of conn.written) {
      for (let at = 0; at < chunk.length;) {
        const space = r.space();
        const n = Math.min(space.length, chunk.length - at);
        space.set(chunk.subarray(at, at + n));
        r.commit(n);
        at += n;
      }
    }
    for (let m = r.next(); m; m = r.next()) {
      if (m.type === MessageType.HELLO) {
        return JSON.parse(new TextDecoder().decode(m.body)).challenge;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error("the proxy sent no HELLO");
}

/** Runs an admission whose certificate waits until `issue` is released. */
async function admission(secretOf: (token: Uint8Array) => Uint8Array) {
  const token = createJoinToken("A".repeat(43));
  const { spkiB64 } = generateHostKey();
  const conn = new MemoryConn();
  const events: string[] = [];
  const issue = Promise.withResolvers<void>();
  conn.push(encodeStream([
    MessageType.HELLO,
    json({ role: "host", name: "h1", tokenId: token.id, features: {} }),
  ]));
  const admitted = admit(conn, {
    token,
    caPem: "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",
    issueHostCertificate: async () => {
      events.push("issuing");
      await issue.promise;
      return { der: new Uint8Array(), pem: "cert", info: { serial: "01", notAfter: 0 } };
    },
    settings: {},
    timeoutMs: 5_000,
    clock: systemClock,
  }, () => events.push("authenticated"));
  const proof = joinProof(secretOf(token.secret), await challengeOf(conn), "h1", spkiB64);
  conn.push(message(MessageType.AUTH, json({ proof, publicKey: spkiB64 })));
  return { admitted, events, issue };
}

Deno.test("admit: the slot goes back once the proof holds, before the certificate is made", async () => {
  const { admitted, events, issue } = await admission((secret) => secret);
  while (events.length < 2) await new Promise((resolve) => setTimeout(resolve, 5));
  // The certificate is still being made, and the slot is already free.
  assertEquals(events, ["authenticated", "issuing"]);
  issue.resolve();
  assertEquals((await admitted)?.name, "h1");
  assertEquals(events, ["authenticated", "issuing"]);
});

Deno.test("admit: a wrong proof never frees the slot early", async () => {
  const { admitted, events } = await admission(() => new Uint8Array(32));
  await assertRejects(() => admitted, AdmissionRefused, "wrong join token secret");
  assertEquals(events, []);
});
