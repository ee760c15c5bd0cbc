/**
 * Who may drive the proxy's control API. Loopback is no boundary: any local user and any web
 * page in a browser on this machine can reach 127.0.0.1, and a DNS-rebinding name makes the
 * browser treat the API as the attacker's own origin. So every request needs a credential,
 * and the request must look like it was meant for this API:
 *
 *     Host header      one of the API's own addresses        else 403 (rebinding)
 *     Origin           absent, or this API's own origin      else 403 (a foreign page)
 *     credential       Authorization: Bearer <api.token>     (the CLI reads state-dir/api.token)
 *                      or the page's session cookie           else 401
 *     writes           Content-Type: application/json        else 415 (no "simple" POSTs)
 *
 * The live page gets in through a one-time login link (`agent page`, valid 60 s, used once),
 * traded for an HttpOnly, SameSite=Strict session cookie. Every refusal is counted by reason.
 *
 * @module
 */

import { sameSecret } from "./join/token.ts";

/** How long a login link works, ms. */
export const LOGIN_CODE_MS = 60_000;

/** How long a page session lasts, ms. */
export const SESSION_MS = 12 * 3600_000;

/** Live login codes and sessions kept at most (the oldest go first). */
const MAX_LIVE = 1000;

/** The cookie that carries a page session. */
export const SESSION_COOKIE = "vnet_session";

/** Why a request was refused. */
export type ApiRefusal =
  | "foreign host"
  | "foreign origin"
  | "no credential"
  | "not json"
  | "bad login code";

const encoder = new TextEncoder();

/** Equality of two tokens in time independent of where they differ (see sameSecret). */
function sameToken(a: string, b: string): boolean {
  return sameSecret(encoder.encode(a), encoder.encode(b));
}

/** A fresh random token (24 bytes, base64url): the API token, login codes, sessions. */
export function randomToken(): string {
  return crypto.getRandomValues(new Uint8Array(24)).toBase64({
    alphabet: "base64url",
    omitPadding: true,
  });
}

/** Bounded map of token -> expiry. */
class Expiring {
  readonly #m = new Map<string, number>();
  add(token: string, until: number): void {
    if (this.#m.size >= MAX_LIVE) this.#m.delete(this.#m.keys().next().value!);
    this.#m.set(token, until);
  }
  /** True when `token` is live at `now`; `consume` removes it either way. */
  valid(token: string, now: number, consume = false): boolean {
    let ok = false;
    for (const [t, until] of this.#m) {
      if (until < now) {
        this.#m.delete(t);
        continue;
      }
      if (sameToken(t, token)) ok = true;
    }
    if (consume) this.#m.delete(token);
    return ok;
  }
}

/** Checks requests to the control API. */
export class ApiGuard {
  readonly #bearer: string;
  readonly #hosts = new Set<string>();
  /** Bound to 0.0.0.0 or ::, where the machine's own names are not all known. */
  #wildcard = false;
  readonly #codes = new Expiring();
  readonly #sessions = new Expiring();
  /** Requests refused, by reason. */
  readonly refused: Record<ApiRefusal, number> = {
    "foreign host": 0,
    "foreign origin": 0,
    "no credential": 0,
    "not json": 0,
    "bad login code": 0,
  };

  /** @param bearer the token in state-dir/api.token */
  constructor(bearer: string) {
    this.#bearer = bearer;
  }

  /**
   * The API listens at `hostname:port`: requests must name it in Host. On a loopback or
   * wildcard address the usual loopback names for the same port count too.
   */
  listensOn(hostname: string, port: number): void {
    const names = [hostname];
    this.#wildcard = hostname === "0.0.0.0" || hostname === "::";
    if (this.#wildcard || hostname.startsWith("127.") || hostname === "::1") {
      names.push("127.0.0.1", "localhost", "[::1]");
    }
    for (const n of names) {
      this.#hosts.add(`${n.includes(":") && !n.startsWith("[") ? `[${n}]` : n}:${port}`);
    }
  }

  /** A fresh one-time login code, valid for {@linkcode LOGIN_CODE_MS}. */
  loginCode(now: number): string {
    const code = randomToken();
    this.#codes.add(code, now + LOGIN_CODE_MS);
    return code;
  }

  /**
   * Checks `req` at `now`: null when it may proceed, or the refusal to send. A valid login
   * request is answered here (a redirect to the page that sets the session cookie).
   *
   * @example
   * ```ts
   * import { ApiGuard } from "./api_guard.ts";
   * const g = new ApiGuard("t0ken");
   * g.listensOn("127.0.0.1", 7801);
   * const ok = new Request("http://127.0.0.1:7801/api/status", {
   *   headers: { authorization: "Bearer t0ken" },
   * });
   * if (g.check(ok, 0) !== null) throw new Error("the CLI's request is refused");
   * const rebound = new Request("http://evil.example:7801/api/status", {
   *   headers: { authorization: "Bearer t0ken" },
   * });
   * if (g.check(rebound, 0)?.status !== 403) throw new Error("a rebinding name got in");
   * ```
   */
  check(req: Request, now: number): Response | null {
    const url = new URL(req.url);
    const host = req.headers.get("host") ?? url.host;
    // Bound to every address, the API cannot know all the names it is reached by: there a
    // request that carries the bearer token (which no web page has) may name any Host; a
    // page session still needs one of the known names.
    if (!this.#hosts.has(host) && !(this.#wildcard && this.#bearerIn(req))) {
      return this.#refuse(
        "foreign host",
        403,
        `Host ${host.slice(0, 100)} is not this API's address`,
      );
    }
    const origin = req.headers.get("origin");
    if (origin !== null && origin !== `http://${host}` && origin !== `https://${host}`) {
      return this.#refuse(
        "foreign origin",
        403,
        `requests from ${origin.slice(0, 100)} are not served`,
      );
    }
    if (req.headers.get("sec-fetch-site") === "cross-site") {
      return this.#refuse("foreign origin", 403, "cross-site requests are not served");
    }
    if (url.pathname === "/login" && req.method === "GET") return this.#login(url, now);
    if (!this.#credentialed(req, now)) {
      return this.#refuse(
        "no credential",
        401,
        "missing or wrong credential: the CLI sends the token in the proxy's state-dir/api.token " +
          "(run it as the proxy's user, or give --state-dir); for the page, run `agent page`",
      );
    }
    // Writes carry JSON; a DELETE without a body (its arguments are in the query) is fine.
    const hasBody = Number(req.headers.get("content-length") ?? 0) > 0 ||
      req.headers.has("transfer-encoding");
    if (["POST", "PUT", "PATCH"].includes(req.method) || (req.method === "DELETE" && hasBody)) {
      const type = (req.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
      if (type !== "application/json") {
        return this.#refuse("not json", 415, "writes need Content-Type: application/json");
      }
    }
    return null;
  }

  #bearerIn(req: Request): boolean {
    const auth = req.headers.get("authorization") ?? "";
    return auth.startsWith("Bearer ") && sameToken(auth.slice(7), this.#bearer);
  }

  #credentialed(req: Request, now: number): boolean {
    if (this.#bearerIn(req)) return true;
    const cookie = (req.headers.get("cookie") ?? "").split(/;\s*/)
      .find((c) => c.startsWith(`${SESSION_COOKIE}=`))?.slice(SESSION_COOKIE.length + 1);
    return cookie !== undefined && this.#sessions.valid(cookie, now);
  }

  #login(url: URL, now: number): Response {
    const code = url.searchParams.get("code") ?? "";
    if (!this.#codes.valid(code, now, true)) {
      return this.#refuse(
        "bad login code",
        403,
        "this login link is used up or expired: run `agent page` for a new one",
      );
    }
    const session = randomToken();
    this.#sessions.add(session, now + SESSION_MS);
    return new Response(null, {
      status: 303,
      headers: {
        location: "/",
        "set-cookie": `${SESSION_COOKIE}=${session}; HttpOnly; SameSite=Strict; Path=/; ` +
          `Max-Age=${SESSION_MS / 1000}`,
      },
    });
  }

  #refuse(why: ApiRefusal, status: number, message: string): Response {
    this.refused[why]++;
    return new Response(JSON.stringify({ error: `Cannot serve: ${message}` }) + "\n", {
      status,
      headers: { "content-type": "application/json" },
    });
  }
}
