/**
 * A host's key pair: the private half in the PEM that TLS and Web Crypto read, the public
 * half the host sends, and the two belonging together.
 */
import { assert, assertEquals } from "../../support/assert.ts";
import { generateHostKey, HOST_KEY_ALGORITHM } from "../../../agent/join/host_key.ts";

/** The public half as a host sends it, read by Web Crypto. */
function publicKey(spkiB64: string): Promise<CryptoKey> {
  const der = Uint8Array.fromBase64(spkiB64);
  return crypto.subtle.importKey("spki", der, HOST_KEY_ALGORITHM, false, ["verify"]);
}

Deno.test("host key: a fresh P-256 pair whose halves belong together, new each time", async () => {
  const a = generateHostKey();
  const b = generateHostKey();
  assert(a.spkiB64 !== b.spkiB64 && a.keyPem !== b.keyPem, "a new key each time");
  const body = a.keyPem.replace(/-----(BEGIN|END) PRIVATE KEY-----|\n/g, "");
  assert(a.keyPem.split("\n").slice(1, -2).every((l) => l.length <= 64), "64-column PEM lines");
  // Read back by Web Crypto, an implementation apart from the generator.
  const priv = await crypto.subtle.importKey(
    "pkcs8",
    Uint8Array.fromBase64(body),
    HOST_KEY_ALGORITHM,
    false,
    ["sign"],
  );
  const pub = await publicKey(a.spkiB64);
  const alg = { name: "ECDSA", hash: "SHA-256" };
  const data = new TextEncoder().encode("the proxy's challenge");
  const sig = await crypto.subtle.sign(alg, priv, data);
  assert(await crypto.subtle.verify(alg, pub, sig, data), "the public half verifies the private");
  const other = await publicKey(b.spkiB64);
  assertEquals(await crypto.subtle.verify(alg, other, sig, data), false);
});
