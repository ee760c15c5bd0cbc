/**
 * The join token: the one string an operator copies from the proxy to each host.
 *
 *     vnet1.<id>.<secret>.<caHash>
 *
 * - `id`: 8 random bytes in hex. Public: it names the token in logs.
 * - `secret`: 32 random bytes in base64url. Proves the host was given the token; it never
 *   crosses the wire (the host answers a challenge with an HMAC keyed by it, see `proof.ts`).
 * - `caHash`: base64url SHA-256 of the proxy CA certificate's DER. Like kubeadm's discovery
 *   hash, it lets a host that trusts nothing yet recognise the right CA (see `discovery.ts`).
 *
 * Base64url has no `.`, so the four parts split unambiguously. Error messages name the part
 * that is wrong but never echo the token text, which may hold the secret.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { readSecretFile, writeSecretFile } from "../secret_file.ts";

/** A parsed join token. */
export interface JoinToken {
  /** 16 lower-case hex characters; public, safe to log. */
  readonly id: string;
  /** 32 random bytes; never log, never send. */
  readonly secret: Uint8Array;
  /** base64url (no padding) SHA-256 of the CA certificate's DER; public. */
  readonly caHash: string;
}

/** The token file's name in the proxy's state directory. */
export const JOIN_TOKEN_FILE = "join.token";

/** Prefix naming the token format version. */
const PREFIX = "vnet1";

/** Bytes of a token secret. */
export const SECRET_BYTES = 32;

/** Bytes of a token id. */
const ID_BYTES = 8;

/** 32 bytes of base64url: 43 characters, the last carrying 2 zero padding bits. */
const CA_HASH = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;

const ID = /^[0-9a-f]{16}$/;

/** Where to find a good token, for error messages. */
const TOKEN_FIX = `Copy the whole token from the proxy's ${JOIN_TOKEN_FILE}`;

/**
 * Creates a new token for the CA whose hash is `caHash`.
 *
 * @throws {TypeError} when `caHash` is not a base64url SHA-256.
 * @example
 * ```ts
 * import { createJoinToken, formatJoinToken, parseJoinToken } from "./token.ts";
 * const token = createJoinToken("A".repeat(43));
 * if (parseJoinToken(formatJoinToken(token)).id !== token.id) throw new Error("round trip");
 * ```
 */
export function createJoinToken(caHash: string): JoinToken {
  if (!isCaHash(caHash)) {
    throw new TypeError(
      "Cannot create join token: the CA hash is not 43 characters of base64url " +
        "(SHA-256 of the CA certificate). Pass ProxyPki.caHash",
    );
  }
  const id = crypto.getRandomValues(new Uint8Array(ID_BYTES)).toHex();
  return redacted(id, crypto.getRandomValues(new Uint8Array(SECRET_BYTES)), caHash);
}

/**
 * Formats a token as the string operators copy: `vnet1.<id>.<secret>.<caHash>`.
 * The result contains the secret: write it only to a secret file or to the operator.
 *
 * @example
 * ```ts
 * import { createJoinToken, formatJoinToken } from "./token.ts";
 * const text = formatJoinToken(createJoinToken("A".repeat(43)));
 * if (!/^vnet1\.[0-9a-f]{16}\.[\w-]{43}\.A{43}$/.test(text)) throw new Error(text.length + "");
 * ```
 */
export function formatJoinToken(token: JoinToken): string {
  const secret = token.secret.toBase64({ alphabet: "base64url", omitPadding: true });
  return `${PREFIX}.${token.id}.${secret}.${token.caHash}`;
}

/**
 * Parses a token; surrounding whitespace (a trailing newline from a file) is ignored.
 *
 * @throws {TypeError} naming what is wrong (prefix, part count, a part's encoding or length),
 * never echoing the text.
 * @example
 * ```ts
 * import { parseJoinToken } from "./token.ts";
 * const text = `vnet1.0011223344556677.${"B".repeat(42)}A.${"C".repeat(42)}A\n`;
 * const token = parseJoinToken(text);
 * if (token.id !== "0011223344556677" || token.secret.length !== 32) throw new Error("parse");
 * try {
 *   parseJoinToken("vnet1.0011223344556677.short.x");
 *   throw new Error("accepted a bad token");
 * } catch (error) {
 *   if (!(error instanceof TypeError)) throw error;
 * }
 * ```
 */
export function parseJoinToken(text: string): JoinToken {
  const parsed = parse(text);
  if ("token" in parsed) return parsed.token;
  const name = parsed.id === undefined ? "join token" : `join token ${parsed.id}`;
  throw new TypeError(`Cannot parse ${name}: ${parsed.problem}. ${TOKEN_FIX}`);
}

/** The token, or what is wrong with the text (never the text itself). */
function parse(text: string): { token: JoinToken } | { problem: string; id?: string } {
  const parts = text.trim().split(".");
  if (parts[0] !== PREFIX) {
    const problem = `it does not start with "${PREFIX}."`;
    if (!/^vnet\d+$/.test(parts[0])) return { problem };
    return {
      problem: `${problem} but "${parts[0]}.", another token format version; ` +
        `use an agent of the same version as the proxy`,
    };
  }
  if (parts.length !== 4) {
    return {
      problem: `it has ${parts.length} dot-separated parts, expected 4 ` +
        `(${PREFIX}.<id>.<secret>.<caHash>)`,
    };
  }
  const [, id, secretText, caHash] = parts;
  if (!ID.test(id)) {
    return { problem: `its id (part 2) is not ${ID_BYTES * 2} lower-case hex characters` };
  }
  const secret = decodeBase64Url(secretText);
  if (secret === null) return { id, problem: "its secret (part 3) is not base64url" };
  if (secret.length !== SECRET_BYTES) {
    return {
      id,
      problem: `its secret (part 3) is ${secret.length} bytes, expected ${SECRET_BYTES}`,
    };
  }
  if (!isCaHash(caHash)) {
    const bytes = decodeBase64Url(caHash);
    const detail = bytes === null ? "is not base64url" : `is ${bytes.length} bytes, expected 32`;
    return { id, problem: `its CA hash (part 4) ${detail}` };
  }
  return { token: redacted(id, secret, caHash) };
}

/**
 * The proxy's token: read from `<stateDir>/join.token`, or created there (mode 0600) on first
 * start. A token made for another CA is an error, never silently replaced: every host that
 * holds it would stop joining without knowing why.
 *
 * @throws {Error} when the file is unreadable, malformed, accessible by others, or was made for
 * another CA; the message names the file and the fix.
 * @example
 * ```ts
 * import { loadOrCreateJoinToken } from "./token.ts";
 * const dir = await Deno.makeTempDir();
 * const first = await loadOrCreateJoinToken(dir, "A".repeat(43));
 * const again = await loadOrCreateJoinToken(dir, "A".repeat(43));
 * if (again.id !== first.id) throw new Error("the token must persist");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function loadOrCreateJoinToken(stateDir: string, caHash: string): Promise<JoinToken> {
  const path = `${stateDir}/${JOIN_TOKEN_FILE}`;
  let text: string;
  try {
    text = await readSecretFile(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    const token = createJoinToken(caHash);
    await writeSecretFile(path, formatJoinToken(token) + "\n");
    return token;
  }
  const parsed = parse(text);
  if (!("token" in parsed)) {
    throw new Error(
      `Cannot load join token from ${path}: ${parsed.problem}. Restore the file, or delete it ` +
        `to create a new token and give the new token to every host`,
    );
  }
  const token = parsed.token;
  if (token.caHash !== caHash) {
    throw new Error(
      `Cannot load join token ${token.id} from ${path}: it was made for the CA with hash ` +
        `${token.caHash}, but the CA in ${stateDir} has hash ${caHash}, so ca.crt was replaced. ` +
        `Restore the old ca.key and ca.crt, or delete ${path} to create a new token and give it ` +
        `to every host`,
    );
  }
  return token;
}

/**
 * Compares two byte strings in time that depends only on their lengths, so a peer learns
 * nothing from how long a wrong guess took.
 *
 * @example
 * ```ts
 * import { sameSecret } from "./token.ts";
 * const a = new Uint8Array([1, 2, 3]);
 * if (!sameSecret(a, new Uint8Array([1, 2, 3])) || sameSecret(a, new Uint8Array([1, 2, 4]))) {
 *   throw new Error("compare");
 * }
 * ```
 */
export function sameSecret(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a[i] ^ b[i];
  return difference === 0;
}

/**
 * The CA hash of a certificate: base64url (no padding) SHA-256 of its DER. Synchronous
 * (node:crypto): every joining host computes it, and an awaited Web Crypto digest waits for
 * an event-loop turn, which under load is tens of milliseconds.
 *
 * @example
 * ```ts
 * import { caHashOf, isCaHash } from "./token.ts";
 * if (!isCaHash(caHashOf(new Uint8Array([1, 2, 3])))) throw new Error("hash");
 * ```
 */
export function caHashOf(certificateDer: Uint8Array): string {
  const digest = new Uint8Array(createHash("sha256").update(certificateDer).digest());
  return digest.toBase64({ alphabet: "base64url", omitPadding: true });
}

/**
 * True when `text` is a well-formed CA hash: exactly the 43 base64url characters of a SHA-256.
 *
 * @example
 * ```ts
 * import { isCaHash } from "./token.ts";
 * if (!isCaHash("A".repeat(43)) || isCaHash("A".repeat(44))) throw new Error("check");
 * ```
 */
export function isCaHash(text: string): boolean {
  return CA_HASH.test(text);
}

/** Decodes unpadded canonical base64url, or returns null. */
function decodeBase64Url(text: string): Uint8Array | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return null;
  try {
    const bytes = Uint8Array.fromBase64(text, { alphabet: "base64url" });
    const again = bytes.toBase64({ alphabet: "base64url", omitPadding: true });
    return again === text ? bytes : null;
  } catch {
    return null;
  }
}

/**
 * A token whose secret stays out of `console.log`, `Deno.inspect` and `JSON.stringify`, so a
 * careless log line of the whole token leaks nothing.
 */
function redacted(id: string, secret: Uint8Array, caHash: string): JoinToken {
  const token = { id, secret, caHash };
  const shown = () => ({ id, secret: "[redacted]", caHash });
  Object.defineProperties(token, {
    toJSON: { value: shown },
    [Symbol.for("Deno.customInspect")]: {
      value: (inspect: (value: unknown, options: unknown) => string, options: unknown) =>
        `JoinToken ${inspect(shown(), options)}`,
    },
    [Symbol.for("nodejs.util.inspect.custom")]: {
      value: () => `JoinToken ${JSON.stringify(shown())}`,
    },
  });
  return Object.freeze(token);
}
