/**
 * What a host does with the proxy's instructions: forwarding rules (the operator's and the
 * adaptation's, acknowledged by sequence number), a VM that moved away, and the fast paths to
 * set up or close.
 *
 *     uplink ──ProxyMessage──> rules -> Switch.rules (+ rules-applied)
 *                              mac-check -> is the VM still here? (mac-status)
 *                              mac-moved -> forget the VM as local
 *                              certificate -> the fast-path listener's new certificate
 *                              peer-*, keys-revoked -> FastPathManager
 *                              probe-peer -> PeerProbes: one RTT timed (probe-result)
 *
 * @module
 */

import type { ProxyMessage } from "./control/messages.ts";
import { applyRules } from "./control/apply.ts";
import type { FastPathManager } from "./fastpath/manager.ts";
import { type PeerProbes, peerProbes } from "./fastpath/peer_probe.ts";
import type { Clock } from "./clock.ts";
import type { Transport } from "./link/transport.ts";
import type { Link } from "./link/link.ts";
import { logger } from "./log.ts";
import { type Mac, parseMac } from "./switch/ethernet.ts";
import type { Switch } from "./switch/switch.ts";

/** What a host acts with. */
export interface ProxyControlContext {
  sw: Switch;
  fastPaths: FastPathManager;
  /** Whether VM `mac` is still on this host's network (see device/bridge_fdb.ts). */
  present(mac: Mac, now: number): boolean;
  /** Wall time, for the switch's MAC table. */
  now(): number;
  /** A renewed certificate for this host: presented on its fast-path listener from now on. */
  onCertificate(certPem: string): void;
  /** Times round trips to peers when the proxy asks; absent: such asks are answered "no". */
  probes?: PeerProbes;
}

/**
 * A host's context from its parts: the probes dial on its transport, time on its clock and
 * verify peers with the proxy's CA as the certificate user last got it.
 */
export function proxyControlContext(parts: {
  sw: Switch;
  fastPaths: FastPathManager;
  present: ProxyControlContext["present"];
  clock: Clock;
  transport: Transport;
  certificate: { use(certPem: string): unknown; caPem(): string };
}): ProxyControlContext {
  const { sw, fastPaths, present, clock, transport, certificate } = parts;
  return {
    sw,
    fastPaths,
    present,
    now: () => clock.now(),
    onCertificate: (certPem) => void certificate.use(certPem),
    probes: peerProbes({
      transport,
      clock,
      caPem: () => certificate.caPem(),
      denied: (key) => fastPaths.trust.denied(key),
    }),
  };
}

/** Acts on one validated message from the proxy, which arrived on `uplink`. */
export function dispatchProxyMessage(
  ctx: ProxyControlContext,
  msg: ProxyMessage,
  uplink: Link,
): void {
  const log = logger("host");
  switch (msg.type) {
    case "rule-add":
    case "rule-del":
    case "rules-set": {
      const what = applyRules(ctx.sw, msg);
      log.info("Proxy asked: {what}", { what });
      if (msg.type === "rules-set") {
        uplink.sendControl({ type: "rules-applied", owner: msg.owner, seq: msg.seq });
      }
      break;
    }
    case "mac-check": {
      // Another host claims one of our VMs: say whether it is still here. The proxy moves it
      // only on "no" (or when this host is gone).
      const mac = parseMac(msg.mac);
      const present = ctx.present(mac, ctx.now());
      uplink.sendControl({ type: "mac-status", mac: msg.mac, present });
      if (!present) ctx.sw.markMovedAway(mac, ctx.now());
      log.info("Proxy asked whether VM {mac} is still here: {answer}", {
        mac: msg.mac,
        answer: present ? "yes" : "no",
      });
      break;
    }
    case "mac-moved": {
      // The VM migrated away: its frames may now arrive from links.
      ctx.sw.markMovedAway(parseMac(msg.mac), ctx.now());
      log.info("VM {mac} moved to {to}", { mac: msg.mac, to: msg.to });
      break;
    }
    case "certificate":
      ctx.onCertificate(msg.certificate);
      log.info("Proxy renewed this host's certificate");
      break;
    case "peer-expect":
    case "peer-connect":
    case "peer-punch":
    case "peer-macs":
    case "keys-revoked":
    case "peer-close":
      ctx.fastPaths.handle(msg);
      break;
    case "probe-peer":
      // Bounded there (one in flight, one a second); answered on the link that asked.
      if (ctx.probes) void ctx.probes.run(msg, (m) => uplink.sendControl(m));
      else {
        uplink.sendControl({
          type: "probe-result",
          peer: msg.peer,
          error: "this host runs no probes",
        });
      }
      break;
  }
}
