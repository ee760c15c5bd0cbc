/**
 * Sends hand-made Ethernet frames from inside a lab namespace, for frames the namespace's own
 * stack cannot make (this kernel has no 8021q module, so no VLAN interfaces):
 *
 *     ip netns exec NS deno run --allow-ffi --allow-env testbed/inject_frame.ts \
 *       IFACE DST_MAC SRC_MAC VLAN_ID COUNT
 *
 * Each frame is 802.1Q-tagged with VLAN_ID (0: untagged), EtherType 0x88b5 (local
 * experimental) and a payload that names its sequence number.
 *
 * @module
 */

import { PcapHandle } from "../ffi/pcap.ts";
import { parseMac, writeMac } from "../agent/switch/ethernet.ts";

/** Builds the test frame number `seq`. */
export function testFrame(dst: string, src: string, vlan: number, seq: number): Uint8Array {
  const tag = vlan > 0 ? 4 : 0;
  const f = new Uint8Array(14 + tag + 64);
  writeMac(f, 0, parseMac(dst));
  writeMac(f, 6, parseMac(src));
  if (tag) f.set([0x81, 0x00, (vlan >> 8) & 0x0f, vlan & 0xff], 12);
  f.set([0x88, 0xb5], 12 + tag);
  f.set(new TextEncoder().encode(`vnet-test-frame-${seq}`), 14 + tag);
  return f;
}

if (import.meta.main) {
  const [iface, dst, src, vlan, count] = Deno.args;
  const handle = PcapHandle.open(iface, {
    snaplen: 256,
    promisc: false,
    immediate: true,
    inboundOnly: true,
  });
  try {
    for (let i = 0; i < Number(count ?? 1); i++) {
      handle.inject(testFrame(dst, src, Number(vlan ?? 0), i));
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    handle.close();
  }
}
