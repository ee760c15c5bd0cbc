/**
 * The CLI's side of the proxy's control API: where it is (`--api`, default 127.0.0.1:7801),
 * the bearer token from `--state-dir`/api.token when that file exists, and one call that turns
 * an HTTP answer into a typed reply or an error line. The reply types are the server's own
 * (proxy/api_types.ts), so what the CLI reads is what the proxy builds.
 *
 * @module
 */

import type { Config } from "../../agent/config/schema.ts";
import { formatAddress, isLoopback } from "../../agent/config/types.ts";
import type { ErrorReply } from "../api_types.ts";

/** What the API answered: a reply of the asked type, or a refusal (status >= 400). */
export type Answer<T> =
  | { ok: true; status: number; reply: T }
  | { ok: false; status: number; error: ErrorReply["error"] | undefined };

/** The API a command talks to. */
export interface ApiClient {
  /** Sends `method path` with an optional JSON body and reads the JSON reply. */
  call<T>(method: string, path: string, body?: unknown): Promise<Answer<T>>;
  /** `GET path` of a text reply (the topology as DOT); a refusal is read as JSON. */
  text(path: string): Promise<Answer<string>>;
}

/** Requests give up after this long: the API answers from memory, at once. */
const TIMEOUT_MS = 5000;

/**
 * The client for `config`'s API. The token is read now; without the file, requests go without
 * one (and the API says why it refused them).
 *
 * @example
 * ```ts
 * import { apiClientFor } from "./api_client.ts";
 * const dir = Deno.makeTempDirSync();
 * const api = await apiClientFor({ api: { hostname: "127.0.0.1", port: 9 }, stateDir: dir });
 * const e = await api.call("GET", "/api/status").catch((e: Error) => e);
 * if (!(e instanceof Error) || !e.message.startsWith("Cannot reach the proxy's API")) throw e;
 * Deno.removeSync(dir);
 * ```
 */
export async function apiClientFor(
  config: Pick<Config, "api" | "stateDir">,
): Promise<ApiClient> {
  const api = config.api ?? { hostname: "127.0.0.1", port: 7801 };
  // Off loopback the API speaks TLS with a certificate from the proxy's CA (state-dir/ca.crt);
  // bound to every address, it is reached here on loopback, a name its certificate carries.
  const wildcard = api.hostname === "0.0.0.0" || api.hostname === "::";
  const target = wildcard ? { hostname: "127.0.0.1", port: api.port } : api;
  const tls = !isLoopback(api.hostname);
  const base = `${tls ? "https" : "http"}://${formatAddress(target)}`;
  const client = tls ? await trustingProxyCa(config.stateDir) : undefined;
  const token = await Deno.readTextFile(`${config.stateDir}/api.token`).then(
    (t) => t.trim(),
    () => null,
  );
  const send = async (method: string, path: string, body?: unknown): Promise<Response> => {
    try {
      return await fetch(base + path, {
        method,
        headers: {
          ...(body === undefined ? {} : { "content-type": "application/json" }),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(TIMEOUT_MS),
        client,
      });
    } catch (e) {
      throw new Error(
        `Cannot reach the proxy's API at ${base}: ${(e as Error).message.split("\n")[0]}. ` +
          "Is `agent --proxy` running on this machine? Give its address with --api ADDR:PORT",
      );
    }
  };
  return {
    call: async (method, path, body) => answer(await send(method, path, body)),
    text: async (path) => {
      const res = await send("GET", path);
      return res.ok ? { ok: true, status: res.status, reply: await res.text() } : answer(res);
    },
  };
}

/** Reads a JSON answer; a body that is not JSON reads as `{}`, as if the API said nothing. */
async function answer<T>(res: Response): Promise<Answer<T>> {
  const body = await res.json().catch(() => ({}));
  if (res.status >= 400) {
    const error = (body as Partial<ErrorReply> | null)?.error;
    return { ok: false, status: res.status, error };
  }
  return { ok: true, status: res.status, reply: body };
}

/** An HTTP client that trusts the proxy's CA (state-dir/ca.crt), for its API off loopback. */
async function trustingProxyCa(stateDir: string): Promise<Deno.HttpClient> {
  const path = `${stateDir}/ca.crt`;
  const caPem = await Deno.readTextFile(path).catch((e: Error) => {
    throw new Error(
      `Cannot trust the proxy's API off loopback: cannot read its CA certificate ${path} ` +
        `(${e.message}). Copy the proxy's state-dir/ca.crt there, or give --state-dir`,
    );
  });
  return Deno.createHttpClient({ caCerts: [caPem] });
}
