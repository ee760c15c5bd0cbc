/**
 * The proxy's control API server (`--api`, default 127.0.0.1:7801): the HTTP face of
 * proxy/api.ts. Every request needs the bearer token kept in `state-dir/api.token` (created
 * 0600 on first start; the CLI reads it) or a page session, also on loopback: see
 * api_guard.ts.
 *
 * @module
 */

import type { Config } from "../agent/config/schema.ts";
import { type Address, formatAddress } from "../agent/config/types.ts";
import { logger } from "../agent/log.ts";
import { readSecretFile, writeSecretFile } from "../agent/secret_file.ts";
import { type ApiContext, apiHandler } from "./api.ts";
import { ApiGuard, randomToken } from "./api_guard.ts";
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

/** The API's bearer token: read from the state dir, or made there. */
async function bearerToken(stateDir: string): Promise<string> {
  const path = `${stateDir}/api.token`;
  return await readSecretFile(path).then((t) => t.trim()).catch(async () => {
    const t = randomToken();
    await writeSecretFile(path, t + "\n");
    return t;
  });
}

/** Serves the control API for `ctx` until `signal` aborts. */
export async function serveControlApi(
  config: Config,
  ctx: ApiContext,
  signal: AbortSignal,
): Promise<ControlApi> {
  const log = logger("proxy");
  const api = config.api ?? DEFAULT_API;
  const guard = new ApiGuard(await bearerToken(config.stateDir));
  let bound = api;
  const handler = apiHandler({ ...ctx, apiRefusals: guard.refused }, guard);
  const onListen = (a: Deno.NetAddr) => {
    bound = { hostname: a.hostname, port: a.port };
    guard.listensOn(a.hostname, a.port);
    log.info(
      "Control API on http://{addr}/api/status (token in {path}; `agent page` for the page)",
      {
        addr: formatAddress(bound),
        path: `${config.stateDir}/api.token`,
      },
    );
  };
  let server: Deno.HttpServer;
  try {
    server = Deno.serve({ hostname: api.hostname, port: api.port, signal, onListen }, handler);
  } catch (e) {
    throw explainListenError(e, api, "api");
  }
  return { address: () => bound, finished: server.finished };
}
