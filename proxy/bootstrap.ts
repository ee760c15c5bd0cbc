/**
 * What the proxy needs from its state directory before it serves: its PKI (CA, certificate),
 * the join token (made on first start and shown once), when that token stops admitting new
 * hosts, and the book of hosts admitted before (names bound to keys, rejoin secrets, revocations).
 *
 * @module
 */

import type { Config } from "../agent/config/schema.ts";
import {
  formatJoinToken,
  JOIN_TOKEN_FILE,
  type JoinToken,
  loadOrCreateJoinToken,
} from "../agent/join/token.ts";
import { HostBook } from "./host_book.ts";
import { loadOrCreatePki, type ProxyPki } from "./pki/ca.ts";

/** The proxy's persistent identity and admission state. */
export interface ProxyState {
  pki: ProxyPki;
  token: JoinToken;
  /** When the join token stops admitting new hosts (ms since epoch), or null: never. */
  tokenExpiresAt: number | null;
  /** Who may join under which name (state-dir/hosts.json). */
  book: HostBook;
}

/**
 * Loads the state from `config.stateDir`, creating what is missing; `announce` shows a token
 * that was just created (and only then).
 */
export async function loadProxyState(
  config: Config,
  announce: (text: string, path: string) => void,
): Promise<ProxyState> {
  const pki = await loadOrCreatePki(config.stateDir);
  const tokenPath = `${config.stateDir}/${JOIN_TOKEN_FILE}`;
  const existed = await Deno.stat(tokenPath).then(() => true, () => false);
  const token = await loadOrCreateJoinToken(config.stateDir, pki.caHash);
  const book = await HostBook.load(config.stateDir);
  // The token's age is its file's: a new token is a new file.
  const tokenMadeAt = (await Deno.stat(tokenPath)).mtime?.getTime() ?? Date.now();
  if (!existed) announce(formatJoinToken(token), tokenPath);
  return {
    pki,
    token,
    tokenExpiresAt: config.tokenTtl > 0 ? tokenMadeAt + config.tokenTtl : null,
    book,
  };
}
