import { assertEquals, assertThrows } from "../../support/assert.ts";
import { encodeStream } from "../../support/wire.ts";
import {
  IDLE_READ_BUFFER_BYTES,
  MAX_FRAME_BODY,
  MessageType,
  ProtocolError,
  StreamReader,
  writeHeader,
} from "../../../agent/link/wire.ts";

const stream = encodeStream;

function feed(r: StreamReader, bytes: Uint8Array, chunk: number) {
  const got: { type: number; body: number[] }[] = [];
  // As a socket read does: at most `chunk` bytes, and at most what the reader has room for.
  for (let i = 0; i < bytes.length;) {
    const space = r.space();
    const part = bytes.subarray(i, Math.min(bytes.length, i + chunk, i + space.length));
    space.set(part);
    r.commit(part.length);
    i += part.length;
    for (let m = r.next(); m; m = r.next()) got.push({ type: m.type, body: [...m.body] });
  }
  return got;
}

Deno.test("wire: messages survive any split of the stream", () => {
  const frameBody = new Uint8Array(1500).map((_, i) => i * 7);
  const bytes = stream(
    [MessageType.FRAME, frameBody],
    [MessageType.CONTROL, new TextEncoder().encode('{"type":"x"}')],
    [MessageType.PING, new Uint8Array(8).fill(3)],
  );
  for (const chunk of [1, 3, 7, 64, 1499, 100_000]) {
    const got = feed(new StreamReader(), bytes, chunk);
    assertEquals(got.map((m) => m.type), [
      MessageType.FRAME,
      MessageType.CONTROL,
      MessageType.PING,
    ]);
    assertEquals(got[0].body, [...frameBody]);
  }
});

Deno.test("wire: a 64 KiB superframe and a 1 MiB control message pass, then the buffer shrinks", () => {
  const big = new Uint8Array(MAX_FRAME_BODY).fill(9);
  const json = new Uint8Array(1 << 20).fill(0x20);
  const got = feed(
    new StreamReader(),
    stream([MessageType.FRAME, big], [MessageType.CONTROL, json]),
    40_000,
  );
  assertEquals(got.length, 2);
  assertEquals(got[0].body.length, MAX_FRAME_BODY);
  assertEquals(got[1].body.length, 1 << 20);
});

Deno.test("wire: bad preamble, wrong version, unknown type and oversize are protocol errors", () => {
  const bad = (bytes: Uint8Array) => () => feed(new StreamReader(), bytes, 1000);
  assertThrows(
    bad(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n")),
    ProtocolError,
    "not speaking",
  );
  const v2 = stream();
  v2[4] = 2;
  assertThrows(bad(v2), ProtocolError, "version 2");
  const unknown = stream([0x77, new Uint8Array(1)]);
  assertThrows(bad(unknown), ProtocolError, "unknown type");
  const huge = stream();
  const withHeader = new Uint8Array(huge.length + 4);
  withHeader.set(huge);
  writeHeader(withHeader, huge.length, MessageType.FRAME, MAX_FRAME_BODY + 1);
  assertThrows(bad(withHeader), ProtocolError, "exceeds");
  const tiny = stream([MessageType.FRAME, new Uint8Array(5)]);
  assertThrows(bad(tiny), ProtocolError, "shorter");
});

/** How many bytes the reader holds room for: what it buffered plus what it offers. */
function capacity(r: StreamReader): number {
  return r.buffered + r.space().length;
}

Deno.test("wire: a large message arriving in records is received in one buffer, not regrown per record", () => {
  const r = new StreamReader();
  const json = new Uint8Array(1 << 20).fill(0x20);
  const bytes = stream([MessageType.CONTROL, json]);
  let smallest = Infinity;
  let got = 0;
  for (let i = 0; i < bytes.length; i += 16_384) {
    const part = bytes.subarray(i, i + 16_384);
    r.space().set(part);
    r.commit(part.length);
    if (r.next()) got++;
    else if (i > 0) smallest = Math.min(smallest, capacity(r));
  }
  assertEquals(got, 1);
  // Once the header announced 1 MiB, the room for it stayed (it used to shrink back to 256 KiB
  // and grow again on every 16 KiB record: half a core for one slow peer).
  assertEquals(smallest >= (1 << 20), true, `capacity fell to ${smallest}`);
  // And after it, the buffer gives the megabyte back.
  assertEquals(capacity(r) <= 256 * 1024, true, `still ${capacity(r)} bytes`);
});

Deno.test("wire: before authentication a body over the cap is refused at its header, in a small buffer", () => {
  const r = new StreamReader(undefined, { preAuthBodyBytes: 64 * 1024 });
  assertEquals(capacity(r) <= 16 * 1024, true, `a pre-auth reader holds ${capacity(r)} bytes`);
  // Only the preamble and the header of a 4 MiB message: refused before any of its body came.
  const head = stream([MessageType.HELLO, new Uint8Array(0)]);
  writeHeader(head, head.length - 4, MessageType.HELLO, 4 * 1024 * 1024 - 1);
  r.space().set(head);
  r.commit(head.length);
  assertThrows(() => r.next(), ProtocolError, "exceeds 65536");
  assertEquals(capacity(r) <= 16 * 1024, true, "nothing was reserved for it");
  // Authenticated, the same reader takes full-size messages.
  const ok = new StreamReader(undefined, { preAuthBodyBytes: 64 * 1024 });
  ok.authenticated();
  const got = feed(ok, stream([MessageType.CONTROL, new Uint8Array(200_000).fill(0x20)]), 16_384);
  assertEquals(got.length, 1);
});

Deno.test("wire: an established link's buffer is a page when idle, grows under load, shrinks after", () => {
  const r = new StreamReader(undefined, { preAuthBodyBytes: 64 * 1024 });
  r.authenticated();
  assertEquals(capacity(r), IDLE_READ_BUFFER_BYTES, "idle: one page");
  // A burst of full-size frames fills it: it grows to the working size.
  const frame = new Uint8Array(9000).fill(5);
  const burst = stream(
    ...Array.from({ length: 20 }, (): [number, Uint8Array] => [MessageType.FRAME, frame]),
  );
  assertEquals(feed(r, burst, 65_536).length, 20);
  assertEquals(capacity(r) >= 256 * 1024, true, `grown: ${capacity(r)}`);
  // Keepalives only, for a while: back to a page, nothing lost on the way.
  const ping = stream([MessageType.PING, new Uint8Array(8)]).subarray(8); // no second preamble
  let pings = 0;
  for (let i = 0; i < 40; i++) {
    const s = r.space();
    s.set(ping);
    r.commit(ping.length);
    for (let m = r.next(); m; m = r.next()) pings++;
  }
  assertEquals(pings, 40);
  assertEquals(capacity(r), IDLE_READ_BUFFER_BYTES, "quiet again: one page");
});
