/**
 * Control messages have a direction: the proxy's parser accepts only what hosts send, the
 * host's only what the proxy sends, so a host cannot hand the proxy a rule or a ticket and the
 * proxy's links cannot be fed a host's report as an instruction.
 */
import { assertEquals, assertThrows } from "../../support/assert.ts";
import {
  MAX_PATH_RTT_ENTRIES,
  parseHostMessage,
  parseProxyMessage,
} from "../../../agent/control/messages.ts";
import { ProtocolError } from "../../../agent/link/wire.ts";

const FROM_HOSTS = [
  { type: "traffic", intervalMs: 1000, pairs: [], group: [] },
  { type: "listening", address: ":7810" },
  { type: "peer-up", peer: "h2" },
  { type: "peer-down", peer: "h2", reason: "gone" },
  { type: "rules-applied", owner: "adapt", seq: 3 },
  { type: "mac-status", mac: "02:00:00:00:00:01", present: false },
  { type: "path-rtt", paths: [["h2", 0.4]] },
  { type: "probe-result", peer: "h2", rttMs: 0.3 },
  { type: "probe-result", peer: "h2", error: "no answer" },
];

const FROM_PROXY = [
  { type: "mac-moved", mac: "02:00:00:00:00:01", to: "h2" },
  { type: "mac-check", mac: "02:00:00:00:00:01" },
  { type: "rule-add", rule: { src: null, dst: null, target: "drop" } },
  { type: "rule-del", src: null, dst: null },
  { type: "rules-set", owner: "adapt", seq: 1, rules: [] },
  {
    type: "peer-expect",
    peer: "h2",
    key: "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ticket: "t",
    ttlMs: 1000,
  },
  {
    type: "peer-connect",
    peer: "h2",
    key: "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    address: "10.0.0.2:7810",
    ticket: "t",
  },
  { type: "peer-macs", peer: "h2", change: "set", macs: ["02:00:00:00:00:01"] },
  {
    type: "certificate",
    certificate: "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",
  },
  { type: "keys-revoked", keys: ["SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] },
  { type: "peer-close", peer: "h2", reason: "done" },
  {
    type: "probe-peer",
    peer: "h2",
    key: "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    address: "10.0.0.2:7810",
  },
];

Deno.test("control: each parser takes its own direction and refuses the other's by name", () => {
  for (const m of FROM_HOSTS) {
    assertEquals(parseHostMessage(m).type, m.type);
    assertThrows(() => parseProxyMessage(m), ProtocolError, `${m.type} from the proxy`);
  }
  for (const m of FROM_PROXY) {
    assertEquals(parseProxyMessage(m).type, m.type);
    assertThrows(() => parseHostMessage(m), ProtocolError, `${m.type} from a host`);
  }
});

Deno.test("control: unknown types and non-objects are refused by both parsers", () => {
  for (const parse of [parseHostMessage, parseProxyMessage]) {
    assertThrows(() => parse({ type: "take-over" }), ProtocolError, "unknown type");
    assertThrows(() => parse([1, 2]), ProtocolError, "not a JSON object");
    assertThrows(() => parse(null), ProtocolError, "not a JSON object");
  }
});

Deno.test("control: path-rtt is bounded and shaped [peer, number]; its values are the proxy's to judge", () => {
  const ok = parseHostMessage({ type: "path-rtt", paths: [["h2", 0.4], ["h3", -1]], extra: 1 });
  // A negative RTT is well-formed: the underlay service refuses and counts it, alone.
  assertEquals(ok, { type: "path-rtt", paths: [["h2", 0.4], ["h3", -1]] });
  const many = Array.from({ length: MAX_PATH_RTT_ENTRIES + 1 }, (_, i) => [`h${i}`, 1]);
  for (
    const [paths, why] of [
      [undefined, "paths must be a list"],
      ["h2", "paths must be a list"],
      [many, `at most ${MAX_PATH_RTT_ENTRIES}`],
      [[["h2"]], "not [peer, rttMs]"],
      [[["h2", "1"]], "not [peer, rttMs]"],
      [[["H2!", 1]], "not [peer, rttMs]"],
      [[{ peer: "h2", rttMs: 1 }], "not [peer, rttMs]"],
    ] as const
  ) {
    assertThrows(() => parseHostMessage({ type: "path-rtt", paths }), ProtocolError, why);
  }
});

Deno.test("control: probe-result carries exactly one of rttMs and error; its value is the proxy's to judge", () => {
  // A negative RTT is well-formed: the proxy's probes refuse and count it (out of range).
  assertEquals(
    parseHostMessage({ type: "probe-result", peer: "h2", rttMs: -1, extra: 1 }),
    { type: "probe-result", peer: "h2", rttMs: -1 },
  );
  for (
    const [fields, why] of [
      [{ peer: "h2" }, "exactly one of rttMs and error"],
      [{ peer: "h2", rttMs: 1, error: "x" }, "exactly one of rttMs and error"],
      [{ peer: "h2", rttMs: "1" }, "rttMs is not a number"],
      [{ peer: "h2", error: "" }, "bad or missing error"],
      [{ peer: "h2", error: "x".repeat(201) }, "bad or missing error"],
      [{ peer: "H2!", rttMs: 1 }, "bad or missing peer"],
    ] as const
  ) {
    assertThrows(() => parseHostMessage({ type: "probe-result", ...fields }), ProtocolError, why);
  }
});

Deno.test("control: probe-peer needs a peer name, a key fingerprint and an address", () => {
  const key = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
  for (
    const [fields, why] of [
      [{ peer: "h2", key: "SHA256:short", address: "10.0.0.2:1" }, "bad or missing key"],
      [{ peer: "h2", key }, "bad or missing address"],
      [{ key, address: "10.0.0.2:1" }, "bad or missing peer"],
    ] as const
  ) {
    assertThrows(() => parseProxyMessage({ type: "probe-peer", ...fields }), ProtocolError, why);
  }
});
