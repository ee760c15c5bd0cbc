/**
 * The join proof: how a host shows it holds the token's secret without sending it.
 *
 * Inside the verified TLS stream the proxy sends a fresh 32-byte challenge; the host answers
 *
 *     HMAC-SHA256(key = secret,
 *                 "vnet-join-v1" 0x00 challenge(32 bytes) 0x00 hostName 0x00 spkiB64)
 *
 * The fresh challenge stops replays, and covering the host's name and public key means a proof
 * cannot be reused to get a certificate for another name or key. The fields cannot run into one
 * another: the challenge has a fixed length and neither a host name nor base64 contains 0x00.
 * Challenges and proofs travel as base64url text (43 characters) inside JSON messages.
 *
 * The HMAC is node:crypto's synchronous one, not Web Crypto's: it takes microseconds, and
 * under a join storm every await on Web Crypto waited behind the whole event-loop turn (5-40 ms
 * at 3,000 hosts, on both sides of every join).
 *
 * @module
 */

import { createHmac } from "node:crypto";
import { concatBytes as concat } from "../bytes.ts";
import { checkHostName } from "./host_key.ts";
import { sameSecret, SECRET_BYTES } from "./token.ts";

/** Bytes of a challenge. */
export const CHALLENGE_BYTES = 32;

/** Domain separation: a MAC made for joining means nothing anywhere else. */
const CONTEXT = "vnet-join-v1\0";

/** 32 bytes of base64url without padding: 43 characters, the last with 2 zero bits. */
const BASE64URL_32 = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;

/** Standard base64: what an SPKI is sent as. */
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * A fresh random challenge, as the base64url text the proxy sends.
 *
 * @example
 * ```ts
 * import { newChallenge } from "./proof.ts";
 * if (newChallenge().length !== 43 || newChallenge() === newChallenge()) throw new Error("fresh");
 * ```
 */
export function newChallenge(): string {
  return crypto.getRandomValues(new Uint8Array(CHALLENGE_BYTES))
    .toBase64({ alphabet: "base64url", omitPadding: true });
}

/**
 * The host's answer to `challenge`: base64url HMAC-SHA256 keyed by the token secret over the
 * challenge, the host's name and its public key (see the module doc).
 *
 * @throws {TypeError} when the secret is not 32 bytes, the challenge is not 32 bytes of
 * base64url, the host name is invalid, or `spkiB64` is not base64.
 * @example
 * ```ts
 * import { joinProof, newChallenge, verifyJoinProof } from "./proof.ts";
 * const secret = crypto.getRandomValues(new Uint8Array(32));
 * const challenge = newChallenge();
 * const proof = joinProof(secret, challenge, "node7", "AAAA");
 * if (!verifyJoinProof(secret, challenge, "node7", "AAAA", proof)) throw new Error("ok");
 * if (verifyJoinProof(secret, challenge, "node8", "AAAA", proof)) throw new Error("name");
 * ```
 */
export function joinProof(
  secret: Uint8Array,
  challenge: string,
  hostName: string,
  spkiB64: string,
): string {
  if (secret.length !== SECRET_BYTES) {
    throw new TypeError(
      `Cannot compute join proof: the secret is ${secret.length} bytes, expected ` +
        `${SECRET_BYTES}. Pass the secret of a parsed join token`,
    );
  }
  if (!BASE64URL_32.test(challenge)) {
    throw new TypeError(
      `Cannot compute join proof: the challenge is not ${CHALLENGE_BYTES} bytes of base64url. ` +
        `The proxy must send a challenge made by newChallenge()`,
    );
  }
  checkHostName(hostName);
  if (!BASE64.test(spkiB64)) {
    throw new TypeError(
      "Cannot compute join proof: the public key is not base64. Pass HostKey.spkiB64",
    );
  }
  const encoder = new TextEncoder();
  const message = concat(
    encoder.encode(CONTEXT),
    Uint8Array.fromBase64(challenge, { alphabet: "base64url" }),
    encoder.encode(`\0${hostName}\0${spkiB64}`),
  );
  const mac = createHmac("sha256", secret).update(message).digest();
  return new Uint8Array(mac).toBase64({ alphabet: "base64url", omitPadding: true });
}

/**
 * True when `proof` is the right answer to `challenge` for this name and key, compared in
 * constant time. Anything malformed (a bad name, key text, challenge or proof) is simply not a
 * proof: the result is false, never an exception, since every argument but the secret and the
 * challenge comes from the peer.
 *
 * @example
 * ```ts
 * import { joinProof, newChallenge, verifyJoinProof } from "./proof.ts";
 * const secret = crypto.getRandomValues(new Uint8Array(32));
 * const challenge = newChallenge();
 * const proof = joinProof(secret, challenge, "node7", "AAAA");
 * if (verifyJoinProof(secret, newChallenge(), "node7", "AAAA", proof)) {
 *   throw new Error("a proof must not answer another challenge");
 * }
 * ```
 */
export function verifyJoinProof(
  secret: Uint8Array,
  challenge: string,
  hostName: string,
  spkiB64: string,
  proof: string,
): boolean {
  let expected: string;
  try {
    expected = joinProof(secret, challenge, hostName, spkiB64);
  } catch {
    return false;
  }
  const encoder = new TextEncoder();
  return sameSecret(encoder.encode(expected), encoder.encode(proof));
}
