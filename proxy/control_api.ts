/**
 * The proxy's control API server (`--api`, default 127.0.0.1:7801): the HTTP face of
 * proxy/api.ts. Every request needs the bearer token kept in `state-dir/api.token` (created
 * 0600 on first start; the CLI reads it) or a page session, also on loopback: see
 * api_guard.ts. Off loopback it is served over TLS only, with a certificate from the proxy's
 * CA for the address it listens on (and the loopback names), so that neither the token nor a
 * session crosses a network in clear; clients trust `state-dir/ca.crt`.
 *
 * @module
 */

import type { Config } from "../agent/config/schema.ts";
import { type Address, formatAddress, isLoopback } from "../agent/config/types.ts";
import { logger } from "../agent/log.ts";
import { type ApiContext, apiHandler } from "./api.ts";
import { ApiGuard } from "../agent/api_guard.ts";
import { loadApiToken } from "../agent/api_token.ts";
import { explainListenError } from "../agent/listen_error.ts";

/** Default address of the control API: loopback only. */
export const DEFAULT_API: Address = { hostname: "127.0.0.1", port: 7801 };

/** A running control API. */
export interface ControlApi {
  /** Where it listens (the real port when 0 was asked for). */
  address(): Address;
  /** Settles when the server has stopped (after `signal` aborted). */
  finished: Promise<void>;
}

/**
 * The names an API certificate carries for listening on `hostname`: that address (unless it is
 * a wildcard), the loopback names the CLI on the same machine uses, and `proxy.vnet`.
 *
 * @example
 * ```ts
 * import { apiCertificateNames } from "./control_api.ts";
 * const names = apiCertificateNames("10.0.0.5");
 * if (!names.includes("10.0.0.5") || !names.includes("127.0.0.1")) throw new Error();
 * ```
 */
export function apiCertificateNames(hostname: string): string[] {
  const wildcard = hostname === "0.0.0.0" || hostname === "::";
  return [
    "proxy.vnet",
    ...(wildcard ? [] : [hostname.replace(/^\[|\]$/g, "")]),
    "localhost",
    "127.0.0.1",
    "::1",
  ].filter((n, i, all) => all.indexOf(n) === i);
}

/**
 * Serves the control API for `ctx` until `signal` aborts; over TLS with `tls` (required off
 * loopback: see the module doc).
 */
export async function serveControlApi(
  config: Config,
  ctx: ApiContext,
  signal: AbortSignal,
  tls: { certPem: string; keyPem: string } | null = null,
): Promise<ControlApi> {
  const log = logger("proxy");
  const api = config.api ?? DEFAULT_API;
  if (tls === null && !isLoopback(api.hostname)) {
    throw new Error(
      `Cannot serve the control API on ${formatAddress(api)} in clear: off loopback it needs ` +
        "TLS (the proxy issues its certificate; this is a bug if you see it)",
    );
  }
  const scheme = tls ? "https" : "http";
  const guard = new ApiGuard(await loadApiToken(config.stateDir));
  let bound = api;
  const handler = apiHandler({ ...ctx, apiRefusals: guard.refused }, guard);
  const onListen = (a: Deno.NetAddr) => {
    bound = { hostname: a.hostname, port: a.port };
    guard.listensOn(a.hostname, a.port);
    log.info(
      "Control API on {scheme}://{addr}/api/status (token in {path}; `agent page` for the " +
        "page{trust})",
      {
        scheme,
        addr: formatAddress(bound),
        path: `${config.stateDir}/api.token`,
        trust: tls ? `; clients trust ${config.stateDir}/ca.crt` : "",
      },
    );
  };
  let server: Deno.HttpServer;
  try {
    server = Deno.serve({
      hostname: api.hostname,
      port: api.port,
      signal,
      onListen,
      ...(tls ? { cert: tls.certPem, key: tls.keyPem } : {}),
    }, handler);
  } catch (e) {
    throw explainListenError(e, api, "api");
  }
  return { address: () => bound, finished: server.finished };
}
