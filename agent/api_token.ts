/**
 * The bearer token of an agent's HTTP API (the proxy's control API, a host's status API),
 * kept in `state-dir/api.token` (0600, created on first start). The CLI reads it from there,
 * so whoever can read the state directory (root, the agent's user) can use the API, and no
 * one else: not another local user, not a web page in a browser on the same machine.
 *
 * @module
 */

import { randomToken } from "./api_guard.ts";
import { readSecretFile, writeSecretFile } from "./secret_file.ts";

/**
 * The API token in `stateDir`, made there (0600) when there is none.
 *
 * @example
 * ```ts
 * import { loadApiToken } from "./api_token.ts";
 * const dir = await Deno.makeTempDir();
 * const first = await loadApiToken(dir);
 * if (await loadApiToken(dir) !== first) throw new Error("the token is kept");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function loadApiToken(stateDir: string): Promise<string> {
  const path = `${stateDir}/api.token`;
  return await readSecretFile(path).then((t) => t.trim()).catch(async () => {
    const t = randomToken();
    await writeSecretFile(path, t + "\n");
    return t;
  });
}
