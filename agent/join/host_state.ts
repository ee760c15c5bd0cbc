/**
 * What a host keeps between runs, in its `--state-dir` (0700) as `host.json` (0600, written
 * atomically): its key pair, which is its identity in the overlay (the proxy binds the host's
 * name to it on the first join), and the rejoin credential the proxy gave it, so that a
 * restarted host comes back without the join token, also after the token expired.
 *
 *     host.json: { "version": 1, "key": { "pem", "spki" },
 *                  "rejoin": { "proxyCaHash", "name", "secret" } | null }
 *
 * A credential is used only with the proxy (CA hash) and the name it was issued for.
 *
 * @module
 */

import { generateHostKey, type HostKey } from "./host_key.ts";
import { readSecretFileIfExists, writeSecretFile } from "../secret_file.ts";

/** A rejoin credential and whom it is for. */
export interface RejoinCredential {
  /** The CA hash of the proxy that issued it (the join token's). */
  proxyCaHash: string;
  name: string;
  /** base64url. */
  secret: string;
}

/** A host's persistent identity and credential. */
export class HostState {
  readonly path: string;
  readonly key: HostKey;
  #rejoin: RejoinCredential | null;

  private constructor(path: string, key: HostKey, rejoin: RejoinCredential | null) {
    this.path = path;
    this.key = key;
    this.#rejoin = rejoin;
  }

  /**
   * Loads `stateDir/host.json`, or creates it with a new key (and the directory, 0700).
   *
   * @throws {Error} naming the file and the fix when it cannot be read, parsed or written.
   */
  static async load(stateDir: string): Promise<HostState> {
    const path = `${stateDir}/host.json`;
    const text = await readSecretFileIfExists(path);
    if (text !== null) {
      const parsed = parse(text);
      if (!parsed) {
        throw new Error(
          `Cannot load the host's identity from ${path}: malformed. Restore it, or delete it ` +
            "(the host then gets a new key, and the proxy must free its name: " +
            "`agent hosts revoke NAME`)",
        );
      }
      return new HostState(path, parsed.key, parsed.rejoin);
    }
    try {
      await Deno.mkdir(stateDir, { recursive: true, mode: 0o700 });
    } catch (e) {
      throw new Error(
        `Cannot keep the host's identity in ${stateDir}: ${(e as Error).message}. ` +
          "Give --state-dir a directory this user may write",
      );
    }
    const state = new HostState(path, generateHostKey(), null);
    await state.#save();
    return state;
  }

  /** The credential for proxy `proxyCaHash` and name `name`, if this host has one. */
  rejoinFor(proxyCaHash: string, name: string): Uint8Array | null {
    const r = this.#rejoin;
    if (!r || r.proxyCaHash !== proxyCaHash || r.name !== name) return null;
    return Uint8Array.fromBase64(r.secret, { alphabet: "base64url" });
  }

  /** Keeps (or, with null, forgets) the rejoin credential; writes only when it changed. */
  async setRejoin(rejoin: RejoinCredential | null): Promise<void> {
    if (JSON.stringify(rejoin) === JSON.stringify(this.#rejoin)) return;
    this.#rejoin = rejoin;
    await this.#save();
  }

  #save(): Promise<void> {
    return writeSecretFile(
      this.path,
      JSON.stringify({
        version: 1,
        key: { pem: this.key.keyPem, spki: this.key.spkiB64 },
        rejoin: this.#rejoin,
      }) + "\n",
    );
  }

  /** Keeps the private key out of logs that inspect the object. */
  [Symbol.for("Deno.customInspect")](): string {
    return `HostState { path: ${JSON.stringify(this.path)}, key: [redacted] }`;
  }
}

function parse(text: string): { key: HostKey; rejoin: RejoinCredential | null } | null {
  try {
    const o = JSON.parse(text);
    if (o?.version !== 1 || typeof o.key?.pem !== "string" || typeof o.key?.spki !== "string") {
      return null;
    }
    const r = o.rejoin;
    const rejoin = r && typeof r.proxyCaHash === "string" && typeof r.name === "string" &&
        typeof r.secret === "string"
      ? { proxyCaHash: r.proxyCaHash, name: r.name, secret: r.secret }
      : null;
    return { key: { keyPem: o.key.pem, spkiB64: o.key.spki }, rejoin };
  } catch {
    return null;
  }
}
