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
import type { Listener, Transport } from "../agent/link/transport.ts";
import { explainListenError } from "../agent/listen_error.ts";
import { logger } from "../agent/log.ts";
import { LogLimit } from "../agent/log_limit.ts";
import type { ProxyState } from "./bootstrap.ts";
import type { ProxyCore } from "./core.ts";
import { serveHost, type SessionContext } from "./host_session.ts";
import { ReportGate } from "./report_gate.ts";

/** Default port hosts join on. */
export const DEFAULT_PROXY_PORT = 7800;

/** The join listener with what it admits through. */
export interface Star {
  listener: Listener;
  acceptor: Acceptor;
  reports: ReportGate;
  /** Accepts and serves hosts until `signal` aborts; then closes the listener and the links. */
  run(signal: AbortSignal): Promise<void>;
}

/**
 * Listens for hosts on `config.listen` (default 0.0.0.0:7800).
 *
 * @throws an explained listen error (address in use, permission) before anything runs.
 */
export function openStar(
  config: Config,
  parts: { core: ProxyCore; state: ProxyState; transport: Transport; clock: Clock },
): Star {
  const { core, state, clock } = parts;
  const log = logger("proxy");
  const listenAddr = config.listen ?? { hostname: "0.0.0.0", port: DEFAULT_PROXY_PORT };
  let listener: Listener;
  try {
    listener = parts.transport.listen(listenAddr, {
      certPem: state.pki.proxyCertPem,
      keyPem: state.pki.proxyKeyPem,
    });
  } catch (e) {
    throw explainListenError(e, listenAddr, "listen");
  }
  log.info("Proxy listening on {addr}; token id {id}", {
    addr: formatAddress(listener.addr),
    id: state.token.id,
  });
  const acceptor = new Acceptor(config);
  const reports = new ReportGate(config.updateInterval);
  const refusalLog = new LogLimit(60_000);
  const session = (signal: AbortSignal): SessionContext => ({
    ...core,
    acceptor,
    refusalLog,
    reports,
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
    },
    link: {
      queueBytes: config.queueBytes,
      keepaliveMs: config.keepalive,
      deadAfterMs: config.deadAfter,
      clock,
    },
    clock,
    signal,
  });
  return {
    listener,
    acceptor,
    reports,
    run: (signal) => {
      signal.addEventListener("abort", () => {
        try {
          listener.close();
        } catch { /* closed */ }
        for (const link of core.hosts.links.values()) link.close("proxy shutting down");
      }, { once: true });
      const ctx = session(signal);
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
