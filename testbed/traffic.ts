/**
 * A small traffic generator run inside a VM namespace: sends UDP datagrams to each listed
 * peer at a steady rate, so that VTTIF sees a known communication pattern.
 *
 *     deno run --allow-net testbed/traffic.ts --to 10.88.0.21,10.88.0.31 --kbps 2000 --seconds 10
 *
 * Datagrams go to the discard port (9); a peer's "port unreachable" answers are small and
 * rate-limited by its kernel. Stops after `--seconds`, or on SIGTERM.
 *
 * @module
 */

import { parseArgs } from "node:util";
import dgram from "node:dgram";

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      to: { type: "string" },
      kbps: { type: "string", default: "2000" },
      seconds: { type: "string", default: "10" },
      size: { type: "string", default: "1200" },
    },
  });
  const peers = (values.to ?? "").split(",").filter(Boolean);
  const size = Number(values.size);
  const perPeerPerSec = (Number(values.kbps) * 1000) / 8 / size;
  const tickMs = 20;
  const perTick = Math.max(1, Math.round((perPeerPerSec * tickMs) / 1000));
  const socket = dgram.createSocket("udp4");
  const payload = new Uint8Array(size).fill(0x5a);
  const end = Date.now() + Number(values.seconds) * 1000;
  const timer = setInterval(() => {
    if (Date.now() >= end) {
      clearInterval(timer);
      socket.close();
      return;
    }
    for (const peer of peers) for (let i = 0; i < perTick; i++) socket.send(payload, 9, peer);
  }, tickMs);
  Deno.addSignalListener("SIGTERM", () => {
    clearInterval(timer);
    socket.close();
    Deno.exit(0);
  });
}
