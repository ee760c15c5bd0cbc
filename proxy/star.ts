/**
 * The star's front door: the proxy's join listener, its acceptor (handshake limits, refusals
 * counted and logged once per source and reason a minute) and the session each admitted host
 * gets. Built from the config and the proxy's core; `run` accepts until the signal aborts.
 *
 *     transport.listen ──Acceptor.run──> serveHost (admit -> star link -> control messages)
 *
 * @module
 */

import type { Clock } from "../agent/clock.ts";
import type { Config } from "../agent/config/schema.ts";
import { formatAddress } from "../agent/config/types.ts";
import { Acceptor } from "../agent/link/acceptor.ts";
import { listenBothFamilies, type Listener, type Transport } from "../agent/link/transport.ts";
import { explainListenError } from "../agent/listen_error.ts";
import { logger } from "../agent/log.ts";
import { LogLimit } from "../agent/log_limit.ts";
import type { ProxyState } from "./bootstrap.ts";
import type { ProxyCore } from "./core.ts";
import { type DiscoveryCount, serveHost, type SessionContext } from "./host_session.ts";
import type { PlacementParts } from "./placement_parts.ts";
import { probePeer } from "../agent/fastpath/handshake.ts";
import { ReportGate } from "./report_gate.ts";

/** Default port hosts join on. */
export const DEFAULT_PROXY_PORT = 7800;

/** The join listener with what it admits through. */
export interface Star {
  listener: Listener;
  acceptor: Acceptor;
  reports: ReportGate;
  /** CA discoveries answered: served, not refused, so kept apart from the acceptor's refusals. */
  discoveries: DiscoveryCount;
  /** Accepts and serves hosts until `signal` aborts; then closes the listener and the links. */
  run(signal: AbortSignal): Promise<void>;
}

/**
 * Listens for hosts on `config.listen` (default [::]:7800, both families).
 *
 * @throws an explained listen error (address in use, permission) before anything runs.
 */
export function openStar(
  config: Config,
  parts: {
    core: ProxyCore;
    state: ProxyState;
    transport: Transport;
    clock: Clock;
    /** Told of each admitted host; given the hosts' fast-path RTTs. */
    placement?: Pick<PlacementParts, "onAdmitted" | "underlay">;
  },
): Star {
  const { core, state, clock } = parts;
  const log = logger("proxy");
  // Default: both address families (IPv4 alone where IPv6 is off).
  const listenAddr = config.listen ?? { hostname: "::", port: DEFAULT_PROXY_PORT };
  const identity = { certPem: state.pki.proxyCertPem, keyPem: state.pki.proxyKeyPem };
  let listener: Listener;
  try {
    listener = config.listen
      ? parts.transport.listen(listenAddr, identity)
      : listenBothFamilies(parts.transport, DEFAULT_PROXY_PORT, identity).listener;
  } catch (e) {
    throw explainListenError(e, listenAddr, "listen");
  }
  log.info("Proxy listening on {addr}; token id {id}", {
    addr: formatAddress(listener.addr),
    id: state.token.id,
  });
  // Fast-path addresses are handed out only where the proxy reached the host itself.
  core.hosts.checkReachabilityWith({
    probe: (address, key, timeoutMs) =>
      probePeer(address, { key, caPem: state.pki.caPem, timeoutMs, transport: parts.transport }),
    clock,
  });
  // Hosts wait up to join-timeout for their connection, so a storm queues instead of retrying.
  const maxWaitMs = Math.max(
    config.handshakeTimeout / 2,
    config.joinTimeout - config.handshakeTimeout,
  );
  const acceptor = new Acceptor({ ...config, maxWaitMs });
  const reports = new ReportGate(config.updateInterval);
  const refusalLog = new LogLimit(60_000);
  const discoveries: DiscoveryCount = { answered: 0 };
  return {
    listener,
    acceptor,
    reports,
    discoveries,
    run: (signal) => {
      signal.addEventListener("abort", () => {
        try {
          listener.close();
        } catch { /* closed */ }
        for (const link of core.hosts.links.values()) link.close("proxy shutting down");
      }, { once: true });
      const ctx = sessionContext(
        config,
        { ...parts, acceptor, refusalLog, reports, discoveries },
        signal,
      );
      return acceptor.run(listener, {
        sourceOf: (conn) => conn.remoteAddr.hostname,
        onRefused: (source, why) => {
          if (refusalLog.shouldLog(`${why}|${source}`, clock.now())) {
            log.warn("Refused a connection from {source}: {why} (more for 60 s: counted only)", {
              source,
              why,
            });
          }
        },
        serve: (conn, handshakeDone) => serveHost(conn, ctx, handshakeDone),
        onAcceptError: (e) =>
          log.error("Cannot accept a connection: {error}", { error: String(e) }),
        onServeError: (e) => log.error("Host connection failed: {error}", { error: String(e) }),
        clock,
      }, signal);
    },
  };
}

/** What every host session works with: the core, the front door's parts, the admission. */
function sessionContext(
  config: Config,
  parts: {
    core: ProxyCore;
    state: ProxyState;
    clock: Clock;
    acceptor: Acceptor;
    refusalLog: LogLimit;
    reports: ReportGate;
    discoveries: DiscoveryCount;
    /** Told of each admitted host; given the hosts' fast-path RTTs. */
    placement?: Pick<PlacementParts, "onAdmitted" | "underlay">;
  },
  signal: AbortSignal,
): SessionContext {
  const { core, state, clock } = parts;
  return {
    ...core,
    acceptor: parts.acceptor,
    discoveries: parts.discoveries,
    refusalLog: parts.refusalLog,
    reports: parts.reports,
    underlay: parts.placement?.underlay,
    admission: {
      token: state.token,
      caPem: state.pki.caPem,
      issueHostCertificate: (n, k) =>
        state.pki.issueHostCertificate(n, k, { lifetimeMs: config.certLifetime, now: clock.now() }),
      tokenExpiresAt: state.tokenExpiresAt,
      book: state.book,
      settings: {
        updateIntervalMs: config.updateInterval,
        keepaliveMs: config.keepalive,
        deadAfterMs: config.deadAfter,
      },
      timeoutMs: config.handshakeTimeout,
      clock,
      onAdmitted: parts.placement?.onAdmitted,
    },
    link: {
      queueBytes: config.queueBytes,
      keepaliveMs: config.keepalive,
      deadAfterMs: config.deadAfter,
      keepaliveIdleMs: config.keepaliveIdle,
      clock,
    },
    clock,
    signal,
  };
}
