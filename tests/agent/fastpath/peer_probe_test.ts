/**
 * A host's side of the proxy's RTT probes with a fake dial: one in flight, one started a
 * second, whatever the proxy asks; revoked keys, a missing CA and bad addresses refused; every
 * ask answered exactly once, with the time or with why not.
 */
import { assertEquals } from "../../support/assert.ts";
import {
  MIN_PROBE_GAP_MS,
  PEER_PROBE_TIMEOUT_MS,
  PeerProbes,
} from "../../../agent/fastpath/peer_probe.ts";
import type { ProbeResult } from "../../../agent/control/host_messages.ts";
import type { ProbePeer } from "../../../agent/control/proxy_messages.ts";
import type { Address } from "../../../agent/config/types.ts";

const KEY = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
const ask = (peer = "h2", address = "10.0.0.3:7810"): ProbePeer => ({
  type: "probe-peer",
  peer,
  key: KEY,
  address,
});

function setup() {
  let mono = 10_000;
  let ca = "CA";
  const dials: { address: Address; key: string; caPem: string; timeoutMs: number }[] = [];
  let finish: (v: number | Error) => void = () => {};
  const probes = new PeerProbes({
    probe: (address, o) => {
      dials.push({ address, ...o });
      return new Promise((resolve, reject) => {
        finish = (v) => typeof v === "number" ? resolve(v) : reject(v);
      });
    },
    caPem: () => ca,
    denied: (key) => key === "SHA256:revokedAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    clock: { monotonic: () => mono },
  });
  const answers: ProbeResult[] = [];
  const answer = (m: ProbeResult) => answers.push(m);
  return {
    probes,
    dials,
    answers,
    answer,
    finish: (v: number | Error) => finish(v),
    advance: (ms: number) => mono += ms,
    setCa: (v: string) => ca = v,
  };
}

Deno.test("peer probes: one in flight and one a second; the rest refused, counted and answered", async () => {
  const s = setup();
  const first = s.probes.run(ask("h2"), s.answer);
  await s.probes.run(ask("h3"), s.answer); // busy: answered at once
  assertEquals(s.answers, [{ type: "probe-result", peer: "h3", error: "refused: busy" }]);
  s.advance(0.42);
  s.finish(0.42);
  await first;
  assertEquals(s.answers[1], { type: "probe-result", peer: "h2", rttMs: 0.42 });
  assertEquals(s.dials.map((d) => [d.address.hostname, d.key, d.caPem, d.timeoutMs]), [
    ["10.0.0.3", KEY, "CA", PEER_PROBE_TIMEOUT_MS],
  ]);
  // Within a second of the last start: refused, however the proxy asks.
  s.advance(MIN_PROBE_GAP_MS - 1);
  await s.probes.run(ask("h4"), s.answer);
  assertEquals(s.answers[2], { type: "probe-result", peer: "h4", error: "refused: too often" });
  s.advance(1);
  const next = s.probes.run(ask("h4"), s.answer);
  s.finish(new Error("Cannot connect: connection refused"));
  await next;
  assertEquals(s.answers[3], {
    type: "probe-result",
    peer: "h4",
    error: "no answer at 10.0.0.3:7810: Cannot connect: connection refused",
  });
  assertEquals([s.probes.answered, s.probes.failed, s.dials.length], [1, 1, 2]);
  assertEquals(s.probes.refused, {
    "busy": 1,
    "too often": 1,
    "revoked key": 0,
    "no CA yet": 0,
    "bad address": 0,
  });
});

Deno.test("peer probes: a revoked key, no CA yet and a bad address are refused without dialing", async () => {
  const s = setup();
  await s.probes.run(
    { ...ask(), key: "SHA256:revokedAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" },
    s.answer,
  );
  await s.probes.run(ask("h2", "not an address"), s.answer);
  s.setCa("");
  await s.probes.run(ask(), s.answer);
  assertEquals(s.answers.map((a) => "error" in a ? a.error : a.rttMs), [
    "refused: revoked key",
    "refused: bad address",
    "refused: no CA yet",
  ]);
  assertEquals(s.dials.length, 0);
});
