/**
 * Fuzzing what a peer can send: the stream codec and the proxy's admission handshake get many
 * thousands of random and mutated inputs. Nothing may crash with anything but the errors that
 * close one connection, hang, or buffer without bound.
 */
import { assert } from "../../support/assert.ts";
import { MemoryConn } from "../../support/memory_conn.ts";
import { encodeStream } from "../../support/wire.ts";
import { prng } from "../../support/topologies.ts";
import {
  HEADER_LEN,
  MAX_JSON_BODY,
  MessageType,
  PREAMBLE_LEN,
  ProtocolError,
  StreamReader,
  writeHeader,
  writePreamble,
} from "../../../agent/link/wire.ts";
import { AdmissionRefused, admit } from "../../../proxy/admit.ts";
import { createJoinToken } from "../../../agent/join/token.ts";
import { HandshakeTimeout } from "../../../agent/link/handshake.ts";
import { systemClock } from "../../../agent/clock.ts";

function validStream(random: () => number): Uint8Array {
  const types = Object.values(MessageType);
  const messages: [number, Uint8Array][] = [];
  for (let i = Math.floor(random() * 6); i > 0; i--) {
    const type = types[Math.floor(random() * types.length)];
    const len = type === MessageType.FRAME
      ? 24 + Math.floor(random() * 2000)
      : type === MessageType.DISCOVER
      ? 0
      : Math.floor(random() * 60);
    messages.push([type, Uint8Array.from({ length: len }, () => random() * 256)]);
  }
  return encodeStream(...messages);
}

function mutate(bytes: Uint8Array, random: () => number): Uint8Array {
  const b = bytes.slice(0, Math.max(1, Math.floor(random() * (bytes.length + 1))));
  for (let k = Math.floor(random() * 6); k > 0; k--) {
    b[Math.floor(random() * b.length)] = random() * 256;
  }
  return b;
}

Deno.test("fuzz: the stream codec survives 20,000 random and mutated streams", () => {
  const random = prng(1234);
  let protocolErrors = 0;
  for (let i = 0; i < 20_000; i++) {
    const input = i % 3 === 0
      ? Uint8Array.from({ length: Math.floor(random() * 300) }, () => random() * 256)
      : mutate(validStream(random), random);
    const r = new StreamReader();
    try {
      for (let at = 0; at < input.length;) {
        const space = r.space();
        const n = Math.min(space.length, input.length - at, 1 + Math.floor(random() * 500));
        space.set(input.subarray(at, at + n));
        r.commit(n);
        at += n;
        for (let m = r.next(), guard = 0; m; m = r.next()) {
          assert(++guard < 10_000, "next() keeps returning messages");
          assert(m.body.length <= MAX_JSON_BODY, "body within bounds");
        }
      }
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw new Error(`input ${i}: ${e}`);
      protocolErrors++;
    }
    assert(r.buffered <= MAX_JSON_BODY + HEADER_LEN + PREAMBLE_LEN, "buffering stays bounded");
  }
  assert(protocolErrors > 1000, "the fuzzer reached the error paths");
});

Deno.test("fuzz: the proxy's admission refuses 2,000 hostile handshakes with one of its own errors", async () => {
  const random = prng(99);
  const token = createJoinToken("A".repeat(43));
  const hello = new TextEncoder().encode(
    JSON.stringify({ role: "host", name: "h1", tokenId: token.id, features: {} }),
  );
  const good = new Uint8Array(PREAMBLE_LEN + HEADER_LEN + hello.length);
  writePreamble(good, 0);
  writeHeader(good, PREAMBLE_LEN, MessageType.HELLO, hello.length);
  good.set(hello, PREAMBLE_LEN + HEADER_LEN);
  const expected = [ProtocolError, AdmissionRefused, HandshakeTimeout];
  for (let i = 0; i < 2000; i++) {
    const conn = new MemoryConn();
    conn.endAfterData = true;
    conn.push(
      i % 2
        ? mutate(good, random)
        : Uint8Array.from({ length: Math.floor(random() * 100) }, () => random() * 256),
    );
    const result = await admit(conn, {
      token,
      caPem: "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",
      issueHostCertificate: () =>
        Promise.resolve({
          der: new Uint8Array(),
          pem: "cert",
          info: { serial: "01", notAfter: 0 },
        }),
      settings: {},
      timeoutMs: 200,
      clock: systemClock,
    }).then((v) => ({ ok: v }), (e) => ({ error: e as Error }));
    if ("error" in result) {
      if (!expected.some((t) => result.error instanceof t)) {
        throw new Error(`input ${i}: ${result.error.stack}`);
      }
    } else {
      assert(result.ok === null, `input ${i}: a mutated handshake was admitted`);
    }
  }
});
