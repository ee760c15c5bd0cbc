/**
 * The dataplane bench names tinc's rows by what tinc's own log says protects its packets; a
 * wrong reading would mislabel the baseline every speed target is measured against.
 */
import { assertEquals, assertThrows } from "../support/assert.ts";
import { tincCipherFromLog } from "../../testbed/baselines.ts";

/** Lines as tinc 1.0.36 prints them at debug level 4 (keys shortened). */
const LOG = `Got METAKEY from h2 (10.77.0.12 port 655): 1 429 672 0 0 7EC518E8
Sending ANS_KEY to h2 (10.77.0.12 port 655): 16 h1 h2 D7098697 0 0 4 0
Got ANS_KEY from h2 (10.77.0.12 port 655): 16 h2 h1 709FBDB5 427 672 4 0
`;

Deno.test("tinc's cipher: UDP from ANS_KEY, TCPOnly from METAKEY, none named as such", () => {
  assertEquals(tincCipherFromLog(LOG, false), "aes-256-cbc, sha256 MAC");
  assertEquals(tincCipherFromLog(LOG, true), "meta connection aes-256-cfb");
  const none = "Got ANS_KEY from h2 (x port 655): 16 h2 h1 ABCD 0 0 4 0\n";
  assertEquals(tincCipherFromLog(none, false), "no encryption, no MAC");
  const odd = "Got ANS_KEY from h2 (x port 655): 16 h2 h1 ABCD 999 64 4 0\n";
  assertEquals(tincCipherFromLog(odd, false), "NID 999, sha1 MAC");
});

Deno.test("tinc's cipher: a log without the request is an error, not a guess", () => {
  assertThrows(() => tincCipherFromLog("Connected to h2\n", false), Error, "no ANS_KEY");
  assertThrows(() => tincCipherFromLog(LOG.split("\n")[2], true), Error, "no METAKEY");
});
