/**
 * A host's identity in the vnet PKI: its name, the TLS name derived from it, and its ECDSA
 * P-256 key pair.
 *
 * A host generates its key itself and sends only the public half (SPKI, standard base64) when it
 * joins; the proxy's CA certifies it as `<name>.host.vnet`, so hosts can later accept TLS
 * fast-path links from each other while trusting nothing but that CA. P-256 is the one curve
 * rustls (behind `Deno.listenTls`), Web Crypto and @peculiar/x509 all handle, so it is the only
 * key type accepted.
 *
 * @module
 */

import { createHash, generateKeyPairSync } from "node:crypto";

/** A freshly generated host key pair in the forms the agent stores and sends. */
export interface HostKey {
  /** The private key, PKCS#8 PEM: usable as `key` in `Deno.listenTls`. Secret: never log it. */
  keyPem: string;
  /** The public key, DER SubjectPublicKeyInfo in standard base64: what the host sends. */
  spkiB64: string;
}

/** The algorithm of every key in the vnet PKI. */
export const HOST_KEY_ALGORITHM: EcKeyImportParams = { name: "ECDSA", namedCurve: "P-256" };

/** DNS suffix of host certificates: host `a` is `a.host.vnet`. */
export const HOST_TLS_SUFFIX = ".host.vnet";

/**
 * One DNS label: lower-case letters, digits and inner hyphens. rustls refuses a label that
 * starts or ends with a hyphen, so such a name could never be dialled.
 */
const HOST_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** Longest base64 SPKI accepted; a P-256 SPKI is 124 characters. */
const MAX_SPKI_B64 = 1024;

/**
 * Generates a host's ECDSA P-256 key pair. Synchronous (node:crypto): Web Crypto's generate
 * and two exports were three event-loop turns and a fifth of a simulated host's CPU in a
 * join storm.
 *
 * @example
 * ```ts
 * import { generateHostKey } from "./host_key.ts";
 * const { keyPem, spkiB64 } = generateHostKey();
 * if (!keyPem.startsWith("-----BEGIN PRIVATE KEY-----")) throw new Error("PKCS#8 PEM");
 * if (spkiB64.length !== 124) throw new Error("P-256 SPKI");
 * ```
 */
export function generateHostKey(): HostKey {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const pkcs8 = privateKey.export({ type: "pkcs8", format: "der" });
  const spki = publicKey.export({ type: "spki", format: "der" });
  return {
    keyPem: privateKeyPem(new Uint8Array(pkcs8)),
    spkiB64: new Uint8Array(spki).toBase64(),
  };
}

/**
 * A host key's fingerprint as people compare them: `SHA256:` and the base64url SHA-256 of the
 * SPKI DER. It is the host's identity in the proxy's records and on the deny list.
 *
 * @example
 * ```ts
 * import { generateHostKey, keyFingerprint } from "./host_key.ts";
 * const { spkiB64 } = generateHostKey();
 * const f = keyFingerprint(spkiB64);
 * if (!/^SHA256:[A-Za-z0-9_-]{43}$/.test(f)) throw new Error(f);
 * ```
 */
export function keyFingerprint(spkiB64: string): string {
  // Synchronous, as the join proof's HMAC (proof.ts): it is on the proxy's join path.
  const digest = new Uint8Array(
    createHash("sha256").update(Uint8Array.fromBase64(spkiB64)).digest(),
  );
  return `SHA256:${digest.toBase64({ alphabet: "base64url", omitPadding: true })}`;
}

/** Key fingerprints as they travel: `SHA256:` and 43 base64url characters. */
const FINGERPRINT = /^SHA256:[A-Za-z0-9_-]{43}$/;

/**
 * The second DNS name of a host's certificate, bound to its key rather than its name:
 * `<hex of the first 16 bytes>.<hex of the last 16>.key.vnet` (a DNS label holds at most 63
 * characters). A fast-path dialer verifies this name, from the key the proxy says the peer
 * has: a certificate of a revoked key still carries the host's old name, but never the key
 * name of the key that holds that name now.
 *
 * @throws {TypeError} for a malformed fingerprint.
 * @example
 * ```ts
 * import { generateHostKey, keyFingerprint, keyTlsName } from "./host_key.ts";
 * const name = keyTlsName(keyFingerprint(generateHostKey().spkiB64));
 * if (!/^[0-9a-f]{32}\.[0-9a-f]{32}\.key\.vnet$/.test(name)) throw new Error(name);
 * ```
 */
export function keyTlsName(fingerprint: string): string {
  if (!FINGERPRINT.test(fingerprint)) {
    throw new TypeError(
      `Cannot make a TLS name of key ${JSON.stringify(fingerprint.slice(0, 60))}: a key ` +
        `fingerprint is SHA256: and 43 base64url characters`,
    );
  }
  const hex = Uint8Array.fromBase64(fingerprint.slice(7), { alphabet: "base64url" }).toHex();
  return `${hex.slice(0, 32)}.${hex.slice(32)}.key.vnet`;
}

/** PKCS#8 DER as PEM: 64-character base64 lines between the RFC 7468 labels. */
function privateKeyPem(der: Uint8Array): string {
  const lines = der.toBase64().match(/.{1,64}/g)!.join("\n");
  return `-----BEGIN PRIVATE KEY-----\n${lines}\n-----END PRIVATE KEY-----\n`;
}

/**
 * Checks a host name and returns it: one DNS label of 1 to 63 characters from `[a-z0-9-]`,
 * not starting or ending with `-`.
 *
 * @throws {TypeError} naming the rule that was broken.
 * @example
 * ```ts
 * import { checkHostName } from "./host_key.ts";
 * checkHostName("rack1-node7");
 * const refused = (() => { try { checkHostName("Node_7"); return false } catch { return true } })();
 * if (!refused) throw new Error("upper case and _ are not allowed");
 * ```
 */
export function checkHostName(hostName: string): string {
  if (!HOST_NAME.test(hostName)) {
    const shown = JSON.stringify(hostName.slice(0, 80));
    throw new TypeError(
      `Cannot use host name ${shown}: a host name is 1 to 63 characters of a-z, 0-9 and '-', ` +
        `not starting or ending with '-'. Pick a name like "rack1-node7"`,
    );
  }
  return hostName;
}

/**
 * The DNS name a host's certificate carries and its peers dial: `<hostName>.host.vnet`.
 *
 * @throws {TypeError} for an invalid host name.
 * @example
 * ```ts
 * import { hostTlsName } from "./host_key.ts";
 * if (hostTlsName("node7") !== "node7.host.vnet") throw new Error("name");
 * ```
 */
export function hostTlsName(hostName: string): string {
  return checkHostName(hostName) + HOST_TLS_SUFFIX;
}

/**
 * Imports a host's public key from base64 SPKI, accepting only ECDSA P-256.
 *
 * The base64 must be canonical (what {@linkcode generateHostKey} produces), so one key has one
 * spelling and the join proof, which covers the spelling, covers the key.
 *
 * @throws {TypeError} for text that is not canonical base64 or a key that is not P-256 ECDSA.
 * @example
 * ```ts
 * import { generateHostKey, importHostPublicKey } from "./host_key.ts";
 * const key = await importHostPublicKey((await generateHostKey()).spkiB64);
 * if (key.type !== "public") throw new Error("public key");
 * ```
 */
export async function importHostPublicKey(spkiB64: string): Promise<CryptoKey> {
  const fix = "Send the SPKI of an ECDSA P-256 key, as generateHostKey() returns it";
  let der: Uint8Array<ArrayBuffer>;
  try {
    if (spkiB64.length > MAX_SPKI_B64) throw new RangeError("too long");
    der = Uint8Array.fromBase64(spkiB64);
    if (der.toBase64() !== spkiB64) throw new TypeError("not canonical");
  } catch (error) {
    throw new TypeError(
      `Cannot use host public key: it is not canonical standard base64 of at most ` +
        `${MAX_SPKI_B64} characters. ${fix}`,
      { cause: error },
    );
  }
  try {
    return await crypto.subtle.importKey("spki", der, HOST_KEY_ALGORITHM, true, ["verify"]);
  } catch (error) {
    throw new TypeError(
      `Cannot use host public key: it is not an ECDSA P-256 SubjectPublicKeyInfo ` +
        `(${error instanceof Error ? error.message : error}). ${fix}`,
      { cause: error },
    );
  }
}
