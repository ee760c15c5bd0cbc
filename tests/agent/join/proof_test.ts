import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { generateHostKey } from "../../../agent/join/host_key.ts";
import { joinProof, newChallenge, verifyJoinProof } from "../../../agent/join/proof.ts";

const secret = () => crypto.getRandomValues(new Uint8Array(32));

// The reference is Web Crypto's HMAC, an implementation other than the one joinProof uses.
Deno.test("joinProof is the HMAC-SHA256 the protocol documents", async () => {
  const key = secret();
  const challenge = newChallenge();
  const { spkiB64 } = generateHostKey();
  const message = Buffer.concat([
    Buffer.from("vnet-join-v1\0"),
    Buffer.from(challenge, "base64url"),
    Buffer.from(`\0node7\0${spkiB64}`),
  ]);
  const hmac = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  const expected = Buffer.from(await crypto.subtle.sign("HMAC", hmac, message)).toString(
    "base64url",
  );
  assert.equal(joinProof(key, challenge, "node7", spkiB64), expected);
});

Deno.test("verifyJoinProof accepts the right proof and nothing else", () => {
  const key = secret();
  const challenge = newChallenge();
  const { spkiB64 } = generateHostKey();
  const other = (generateHostKey()).spkiB64;
  const proof = joinProof(key, challenge, "node7", spkiB64);
  assert.equal(verifyJoinProof(key, challenge, "node7", spkiB64, proof), true);
  const wrong: [string, boolean][] = [
    ["secret", verifyJoinProof(secret(), challenge, "node7", spkiB64, proof)],
    ["name", verifyJoinProof(key, challenge, "node8", spkiB64, proof)],
    ["key", verifyJoinProof(key, challenge, "node7", other, proof)],
    ["challenge", verifyJoinProof(key, newChallenge(), "node7", spkiB64, proof)],
    ["tampered proof", verifyJoinProof(key, challenge, "node7", spkiB64, flipLast(proof))],
    ["empty proof", verifyJoinProof(key, challenge, "node7", spkiB64, "")],
    ["proof with suffix", verifyJoinProof(key, challenge, "node7", spkiB64, proof + "A")],
    ["bad name", verifyJoinProof(key, challenge, "Node 7", spkiB64, proof)],
    ["bad key text", verifyJoinProof(key, challenge, "node7", "not base64!", proof)],
    ["bad challenge", verifyJoinProof(key, "short", "node7", spkiB64, proof)],
  ];
  for (const [what, result] of wrong) assert.equal(result, false, `wrong ${what}`);
});

Deno.test("joinProof refuses malformed inputs", () => {
  const challenge = newChallenge();
  assert.throws(() => joinProof(new Uint8Array(16), challenge, "a", "AAAA"), /secret is 16 bytes/);
  assert.throws(() => joinProof(secret(), "abc", "a", "AAAA"), /challenge is not 32 bytes/);
  assert.throws(() => joinProof(secret(), challenge, "a\0b", "AAAA"), /Cannot use host name/);
  assert.throws(() => joinProof(secret(), challenge, "a", "AA\0A"), /public key is not base64/);
});

Deno.test("newChallenge returns 32 fresh random bytes as base64url", () => {
  const seen = new Set<string>();
  for (let i = 0; i < 100; i++) {
    const challenge = newChallenge();
    assert.equal(Uint8Array.fromBase64(challenge, { alphabet: "base64url" }).length, 32);
    seen.add(challenge);
  }
  assert.equal(seen.size, 100);
});

function flipLast(text: string): string {
  const last = text.at(-1) === "A" ? "Q" : "A";
  return text.slice(0, -1) + last;
}
