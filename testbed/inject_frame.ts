/**
 * Sends hand-made Ethernet frames from inside a lab namespace, for frames the namespace's own
 * stack cannot make (this kernel has no 8021q module, so no VLAN interfaces):
 *
 *     ip netns exec NS deno run --allow-ffi --allow-env testbed/inject_frame.ts \
 *       IFACE DST_MAC SRC_MAC VLAN_ID COUNT [ETHERTYPE]
 *
 * Each frame is 802.1Q-tagged with VLAN_ID (0: untagged), of EtherType ETHERTYPE (default
 * 0x88b5, local experimental; 0x8035 for a RARP-like announcement) and a payload that names
 * its sequence number. Frames leave 50 ms apart.
 *
 * @module
 */

import { PcapHandle } from "../ffi/pcap.ts";
import { parseMac, writeMac } from "../agent/switch/ethernet.ts";

/** Builds the test frame number `seq`. */
export function testFrame(
  dst: string,
  src: string,
  vlan: number,
  seq: number,
  etherType = 0x88b5,
): Uint8Array {
  const tag = vlan > 0 ? 4 : 0;
  const f = new Uint8Array(14 + tag + 64);
  writeMac(f, 0, parseMac(dst));
  writeMac(f, 6, parseMac(src));
  if (tag) f.set([0x81, 0x00, (vlan >> 8) & 0x0f, vlan & 0xff], 12);
  f.set([etherType >> 8, etherType & 0xff], 12 + tag);
  f.set(new TextEncoder().encode(`vnet-test-frame-${seq}`), 14 + tag);
  return f;
}

if (import.meta.main) {
  const [iface, dst, src, vlan, count, etherType] = Deno.args;
  const handle = PcapHandle.open(iface, {
    snaplen: 256,
    promisc: false,
    immediate: true,
    inboundOnly: true,
  });
  try {
    for (let i = 0; i < Number(count ?? 1); i++) {
      handle.inject(testFrame(dst, src, Number(vlan ?? 0), i, Number(etherType ?? 0x88b5)));
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    handle.close();
  }
}
