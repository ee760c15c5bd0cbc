/**
 * One host's session on the proxy, from the accepted TLS connection to the end of its star
 * link: admission (or a CA discovery answered), the link registered and attached to the switch,
 * the operator's rules for the host resent, the host's control messages dispatched, and
 * everything about the host forgotten when the link closes.
 *
 *     TLS conn ──admit──> Link "host:NAME" ──frames──> Switch.forward
 *                                          └─control─> VTTIF (traffic), adaptation (listening,
 *                                                      peer-up/down, rules-applied), the
 *                                                      underlay book (path-rtt,
 *                                                      probe-result)
 *
 * @module
 */

import type { AdaptLoop } from "../adapt/loop.ts";
import type { Clock } from "../agent/clock.ts";
import { formatAddress, parseAddress } from "../agent/config/types.ts";
import { type Conn, type NetConn, unmapIPv4 } from "../agent/link/transport.ts";
import { type HostMessage, parseHostMessage } from "../agent/control/messages.ts";
import { Link, type LinkOptions } from "../agent/link/link.ts";
import { logger } from "../agent/log.ts";
import { parseMac } from "../agent/switch/ethernet.ts";
import { hostPort } from "../agent/switch/port_name.ts";
import type { Switch } from "../agent/switch/switch.ts";
import type { Acceptor } from "../agent/link/acceptor.ts";
import type { LogLimit } from "../agent/log_limit.ts";
import { AdmissionRefused, admit, type AdmitContext } from "./admit.ts";
import type { EventHub } from "./events.ts";
import type { HostRegistry } from "./host_registry.ts";
import type { MacFacts, ReportGate } from "./report_gate.ts";
import type { MacAuthority } from "./mac_authority.ts";
import { hostOfPort } from "../agent/switch/port_name.ts";
import type { VttifService } from "./vttif_service.ts";
import type { UnderlayService } from "./underlay_service.ts";

/** CA discoveries the join listener answered. */
export interface DiscoveryCount {
  answered: number;
}

/** What a host session works with: the proxy's subsystems. */
export interface SessionContext {
  sw: Switch;
  hosts: HostRegistry;
  vttif: VttifService;
  adapt: AdaptLoop;
  events: EventHub;
  acceptor: Acceptor;
  /** CA discoveries answered (a discovery is served, not refused). */
  discoveries: DiscoveryCount;
  /** Who may take over a VM's MAC (answers to mac-check go here). */
  macs: MacAuthority;
  /** One log line per source and kind of refusal per minute. */
  refusalLog: LogLimit;
  reports: ReportGate;
  /**
   * Where hosts' fast-path RTTs and probe answers go (placement's underlay book); absent: they
   * are ignored.
   */
  underlay?: Pick<UnderlayService, "observePathRtts" | "observeProbeResult">;
  admission: AdmitContext;
  link: LinkOptions;
  clock: Clock;
  signal: AbortSignal;
}

/**
 * The address others should dial for a host's fast paths, without a reachability check (the
 * proxy checks when it can probe: proxy/reachability.ts, where every candidate is tried and
 * only one that answered with the host's key is handed out). A host advertises `:PORT` when
 * it listens on all its interfaces, and then the address it joined from is the one the proxy
 * knows works. An explicit address is taken only when it is the address the host joined from:
 * anything else would let a host make its peers dial an address of its choosing (another
 * machine, an internal service), so the port is kept and the address replaced, with the reason.
 *
 * @example
 * ```ts
 * import { resolveListen } from "./host_session.ts";
 * if (resolveListen(":7810", "10.0.0.5").address !== "10.0.0.5:7810") throw new Error();
 * const r = resolveListen("192.0.2.99:22", "10.0.0.5");
 * if (r.address !== "10.0.0.5:22" || r.replaced === null) throw new Error("taken as given");
 * ```
 */
export function resolveListen(
  advertised: string,
  joinedFrom: string,
): { address: string | null; replaced: string | null } {
  let a;
  try {
    a = parseAddress(advertised);
  } catch (e) {
    return {
      address: null,
      replaced: `its address ${advertised} is not one: ${(e as Error).message}`,
    };
  }
  const address = formatAddress({ hostname: joinedFrom, port: a.port });
  if (a.hostname === "0.0.0.0" || a.hostname === "::" || a.hostname === joinedFrom) {
    return { address, replaced: null };
  }
  return {
    address,
    replaced:
      `it advertised ${advertised}, but it joined from ${joinedFrom}; peers dial ${address}`,
  };
}

/** What the proxy's switch knows about MACs, for checking reports. */
function macFacts(sw: Switch): MacFacts {
  return {
    ownerOf: (mac) => {
      const port = sw.macs.get(parseMac(mac))?.port;
      return port === undefined ? null : hostOfPort(port);
    },
    known: (mac) => sw.macs.get(parseMac(mac)) !== undefined,
  };
}

/** Acts on one control message from host `host` (joined from `from`). */
export function dispatchHostMessage(
  ctx: Pick<
    SessionContext,
    "sw" | "hosts" | "vttif" | "adapt" | "reports" | "macs" | "clock" | "underlay"
  >,
  host: string,
  from: string,
  msg: HostMessage,
  now: number,
): void {
  switch (msg.type) {
    case "traffic": {
      // Reports come every interval: the moment to look again at a host nobody could reach.
      ctx.hosts.reach?.recheckIfDue(host, now);
      const report = ctx.reports.check(host, msg, macFacts(ctx.sw), now);
      if (!report) break;
      ctx.vttif.accept(report);
      // The reporter's VMs stay known here even when all their traffic takes fast paths and
      // no frame of theirs crosses the proxy any more.
      for (const [src] of report.pairs) ctx.sw.refreshMac(parseMac(src), hostPort(host), now);
      for (const [src] of report.group) ctx.sw.refreshMac(parseMac(src), hostPort(host), now);
      break;
    }
    case "listening": {
      const reach = ctx.hosts.reach;
      const key = ctx.hosts.identityOf(host)?.key;
      if (reach && key) {
        // Only an address where the proxy reached the host itself is handed to peers.
        void reach.listening(host, { address: msg.address, advertise: msg.advertise ?? null }, key)
          .then(() => ctx.adapt.reconcileSoon());
        break;
      }
      const listen = resolveListen(msg.address, from);
      if (listen.replaced) {
        logger("proxy").warn("Host {host}'s fast-path address not taken: {why}", {
          host,
          why: listen.replaced,
        });
      }
      if (listen.address) ctx.hosts.setListenAddress(host, listen.address);
      ctx.adapt.reconcileSoon();
      break;
    }
    case "peer-up":
    case "peer-down":
    case "rules-applied":
      ctx.adapt.onHostMessage(host, msg, now);
      break;
    case "mac-status":
      ctx.macs.onStatus(host, parseMac(msg.mac), msg.present, now);
      break;
    case "path-rtt":
      // Checked and counted there: only this host's own pairs with a fast path up.
      ctx.underlay?.observePathRtts(host, msg.paths, now);
      break;
    case "probe-result":
      // Taken only as the answer to a probe the proxy asked of this host; else counted there.
      ctx.underlay?.observeProbeResult(host, msg, now);
      break;
  }
}

/**
 * Serves one accepted connection until its host's link ends; calls `handshakeDone` once the
 * peer authenticated or admission settled, whichever is first. Never rejects for what the
 * peer does: a refusal is counted and logged.
 */
export async function serveHost(
  conn: NetConn,
  ctx: SessionContext,
  handshakeDone: () => void,
): Promise<void> {
  const log = logger("proxy");
  // An IPv4 host on a dual-stack listener appears as ::ffff:a.b.c.d; it is a.b.c.d.
  const remote = { hostname: unmapIPv4(conn.remoteAddr.hostname), port: conn.remoteAddr.port };
  const from = formatAddress(remote);
  let host;
  try {
    host = await admit(conn, ctx.admission, handshakeDone);
  } catch (e) {
    const why = e instanceof AdmissionRefused ? "refused" : (e as Error).name;
    ctx.acceptor.count(why);
    if (ctx.refusalLog.shouldLog(`${why}|${remote.hostname}`, ctx.clock.now())) {
      log.warn("Refused connection from {from}: {reason} (more from it for 60 s: counted only)", {
        from,
        reason: (e as Error).message,
      });
    }
    closeQuietly(conn);
    return;
  } finally {
    handshakeDone();
  }
  if (host === null) {
    ctx.discoveries.answered++;
    closeQuietly(conn);
    return;
  }
  const name = host.name;
  const port = hostPort(name);
  // The old connection goes first, with everything about it (port, fast paths).
  ctx.hosts.links.get(name)?.close("replaced by a new connection from the same host");
  const link = new Link(
    {
      name: port,
      kind: "host",
      peer: name,
      conn: host.handshake.conn,
      reader: host.handshake.reader,
    },
    {
      onFrame: (packet) => ctx.sw.forward(packet, port, ctx.clock.now()),
      // A malformed or wrong-direction message throws a ProtocolError: the link closes with
      // one log line.
      onControl: (raw) =>
        dispatchHostMessage(ctx, name, remote.hostname, parseHostMessage(raw), ctx.clock.now()),
      onClose: (reason, l) => {
        if (ctx.hosts.remove(name, l)) {
          ctx.sw.detach(port);
          ctx.reports.forget(name);
          ctx.macs.forgetHost(name);
          ctx.adapt.onHostDown(name);
        }
        log.info("Host {host} left: {reason}", { host: name, reason });
        ctx.events.emit({ type: "host", at: ctx.clock.now(), host: name, state: "left", reason });
      },
    },
    ctx.link,
  );
  ctx.hosts.add(name, link, { key: host.key, spkiB64: host.spkiB64 });
  ctx.hosts.reach?.joined(name, remote);
  ctx.reports.joined(name, ctx.clock.now());
  ctx.sw.attach(link);
  ctx.adapt.onHostUp(name);
  // Operator rules for this host outlive its reconnects.
  for (const rule of ctx.hosts.rulesFor(name)) link.sendControl({ type: "rule-add", rule });
  // The deny list, so that it sets up no fast path with a revoked key.
  const revoked = ctx.admission.book?.revoked() ?? [];
  if (revoked.length > 0) {
    link.sendControl({ type: "keys-revoked", keys: revoked.map((r) => r.key) });
  }
  log.info("Host {host} joined from {from}", { host: name, from });
  ctx.events.emit({ type: "host", at: ctx.clock.now(), host: name, state: "joined", from });
  await link.run(ctx.signal);
}

function closeQuietly(conn: Conn): void {
  try {
    conn.close();
  } catch { /* closed */ }
}
