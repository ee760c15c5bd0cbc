/**
 * The proxy's API as the CLI calls it: with the bearer token from the proxy's state dir, and
 * JSON bodies labelled as such.
 *
 * @module
 */

/** `fetch` against the API at `port`, authenticated with the token in `stateDir`. */
export function apiClient(
  port: number,
  stateDir: string,
): (path: string, init?: RequestInit) => Promise<Response> {
  const token = Deno.readTextFileSync(`${stateDir}/api.token`).trim();
  return (path, init = {}) => {
    const headers = new Headers(init.headers);
    headers.set("authorization", `Bearer ${token}`);
    if (init.body !== undefined && !headers.has("content-type")) {
      headers.set("content-type", "application/json");
    }
    return fetch(`http://127.0.0.1:${port}${path}`, { ...init, headers });
  };
}
