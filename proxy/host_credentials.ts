/**
 * Rejoin credentials: a random secret per admitted host, so that a host that joined once can
 * come back (after a link loss or a proxy restart) without the join token, and the join token
 * can expire (`token-ttl`) without cutting off the hosts already in the overlay. Like a
 * bootstrap token that is traded for a node's own credential.
 *
 * Kept in `state-dir/hosts.json` (mode 0600, written atomically) so they outlive the proxy.
 *
 * @module
 */

import { readSecretFile, writeSecretFile } from "../agent/secret_file.ts";

/** Host name -> its rejoin secret (base64url). */
export class HostCredentials {
  readonly #path: string;
  readonly #secrets: Map<string, string>;

  private constructor(path: string, secrets: Map<string, string>) {
    this.#path = path;
    this.#secrets = secrets;
  }

  /** Loads `state-dir/hosts.json`, or starts empty when it does not exist. */
  static async load(stateDir: string): Promise<HostCredentials> {
    const path = `${stateDir}/hosts.json`;
    let text: string;
    try {
      text = await readSecretFile(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return new HostCredentials(path, new Map());
      throw e;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new Error(
        `Cannot load host credentials from ${path}: not JSON. Restore it, or delete it (hosts then rejoin with the join token)`,
      );
    }
    const map = new Map<string, string>();
    for (const [name, secret] of Object.entries(parsed as Record<string, unknown>)) {
      if (typeof secret === "string") map.set(name, secret);
    }
    return new HostCredentials(path, map);
  }

  /** The secret of `host`, if it has one. */
  get(host: string): Uint8Array | null {
    const s = this.#secrets.get(host);
    return s ? Uint8Array.fromBase64(s, { alphabet: "base64url" }) : null;
  }

  /** The host's secret (created and saved on first use), base64url, for its WELCOME. */
  async issue(host: string): Promise<string> {
    let s = this.#secrets.get(host);
    if (!s) {
      s = crypto.getRandomValues(new Uint8Array(32)).toBase64({
        alphabet: "base64url",
        omitPadding: true,
      });
      this.#secrets.set(host, s);
      await writeSecretFile(
        this.#path,
        JSON.stringify(Object.fromEntries(this.#secrets), null, 1) + "\n",
      );
    }
    return s;
  }
}
