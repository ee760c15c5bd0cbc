/**
 * Helper of pcap_test.ts, run inside the test's namespace (`ip netns exec NS deno run ...`):
 * libpcap captures in the namespace of the process that opens it, so the captures live here.
 * Given the two ends A and B of a veth pair, it injects marked frames from each end, collects
 * what three captures saw, and prints one JSON object for the test to judge.
 *
 *     usage: pcap_probe.ts IFACE_A IFACE_B
 *
 * @module
 */

import { PcapHandle } from "../../ffi/mod.ts";

const [ifA, ifB] = Deno.args;
const PROTO = 0x88b5; // IEEE local experimental EtherType
const OTHER_PROTO = 0x88b6;
const common = { snaplen: 2048, promisc: true, immediate: true };

/** A 60-byte broadcast frame of EtherType `proto` carrying `marker` as text. */
function frame(proto: number, marker: string): Uint8Array {
  const f = new Uint8Array(60);
  f.fill(0xff, 0, 6);
  f.set([0x02, 0, 0, 0, 0, 0x0b], 6);
  f.set([proto >> 8, proto & 0xff], 12);
  f.set(new TextEncoder().encode(marker), 14);
  return f;
}

/** Markers of the frames `capture` yields until `want` came or `ms` passed, then 100 ms more. */
async function collect(capture: PcapHandle, want: number, ms: number): Promise<string[]> {
  const seen: string[] = [];
  const buf = new Uint8Array(2048);
  const deadline = Date.now() + ms;
  let grace = Infinity;
  while (Date.now() < Math.min(deadline, grace)) {
    const n = capture.next(buf, 0);
    if (n > 0) {
      const end = buf.indexOf(0, 14);
      seen.push(new TextDecoder().decode(buf.subarray(14, end < 0 ? n : end)));
      if (seen.length >= want && grace === Infinity) grace = Date.now() + 100;
    } else {
      await capture.waitReadable(20);
    }
  }
  return seen;
}

const filter = `ether proto ${PROTO}`;
const atA = PcapHandle.open(ifA, { ...common, inboundOnly: true, filter });
const atB = PcapHandle.open(ifB, { ...common, inboundOnly: true, filter });
const bothWaysAtA = PcapHandle.open(ifA, { ...common, inboundOnly: false, filter });
try {
  // Injected at B, three frames pass A's filter and two do not.
  for (let i = 0; i < 3; i++) atB.inject(frame(PROTO, `b2a-${i}`));
  for (let i = 0; i < 2; i++) atB.inject(frame(OTHER_PROTO, `b2a-other-${i}`));
  // Injected at A: they must arrive at B, and an inbound-only capture at A must not see them.
  for (let i = 0; i < 2; i++) atA.inject(frame(PROTO, `a2b-${i}`));
  const [seenAtA, seenAtB, seenBothWaysAtA] = await Promise.all([
    collect(atA, 3, 3000),
    collect(atB, 2, 3000),
    collect(bothWaysAtA, 5, 3000),
  ]);
  let badFilterError = "";
  try {
    PcapHandle.open(ifA, { ...common, inboundOnly: true, filter: "ether proto (" }).close();
  } catch (e) {
    badFilterError = (e as Error).message;
  }
  console.log(JSON.stringify({
    seenAtA,
    seenAtB,
    seenBothWaysAtA,
    statsA: atA.stats(),
    warning: atA.warning ?? null,
    badFilterError,
  }));
} finally {
  atA.close();
  atB.close();
  bothWaysAtA.close();
}
