import assert from "node:assert/strict";
import {
  caHashOf,
  createJoinToken,
  formatJoinToken,
  isCaHash,
  JOIN_TOKEN_FILE,
  loadOrCreateJoinToken,
  parseJoinToken,
  sameSecret,
} from "../../../agent/join/token.ts";

const CA_HASH = "Q".repeat(42) + "A";
const OTHER_CA_HASH = "R".repeat(42) + "A";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "vnet_token_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A token text whose secret is easy to spot in a message. */
function textWith(parts: { prefix?: string; id?: string; secret?: string; caHash?: string }) {
  return [
    parts.prefix ?? "vnet1",
    parts.id ?? "0123456789abcdef",
    parts.secret ?? "SECRETSECRET" + "x".repeat(30) + "A",
    parts.caHash ?? CA_HASH,
  ].join(".");
}

Deno.test("a created token formats and parses back to the same values", () => {
  const token = createJoinToken(CA_HASH);
  assert.match(token.id, /^[0-9a-f]{16}$/);
  assert.equal(token.secret.length, 32);
  const text = formatJoinToken(token);
  assert.match(text, /^vnet1\.[0-9a-f]{16}\.[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}$/);
  const parsed = parseJoinToken(`  ${text}\n`);
  assert.equal(parsed.id, token.id);
  assert.equal(parsed.caHash, CA_HASH);
  assert.ok(sameSecret(parsed.secret, token.secret));
  assert.notEqual(createJoinToken(CA_HASH).id, token.id);
});

Deno.test("createJoinToken refuses a malformed CA hash", () => {
  assert.throws(() => createJoinToken("abc"), TypeError);
  assert.throws(() => createJoinToken("R".repeat(43)), TypeError); // nonzero padding bits
});

Deno.test("parseJoinToken says precisely what is wrong", () => {
  const cases: [string, RegExp][] = [
    ["", /does not start with "vnet1\."/],
    ["hello", /does not start with "vnet1\."/],
    [textWith({ prefix: "vnet2" }), /"vnet2\.", another token format version/],
    [textWith({}).split(".").slice(0, 3).join("."), /has 3 dot-separated parts, expected 4/],
    [textWith({}) + ".extra", /has 5 dot-separated parts, expected 4/],
    [textWith({ id: "0123456789ABCDEF" }), /id \(part 2\) is not 16 lower-case hex/],
    [textWith({ id: "0123" }), /id \(part 2\) is not 16 lower-case hex/],
    [
      textWith({ secret: "SECRET+SECRET/" + "x".repeat(28) + "A" }),
      /secret \(part 3\) is not base64url/,
    ],
    [textWith({ secret: "SECRETSECRET" + "=" }), /secret \(part 3\) is not base64url/],
    [textWith({ secret: "SECRETSECRET" }), /secret \(part 3\) is 9 bytes, expected 32/],
    [textWith({ caHash: "abc+" }), /CA hash \(part 4\) is not base64url/],
    [textWith({ caHash: "QUFB" }), /CA hash \(part 4\) is 3 bytes, expected 32/],
  ];
  for (const [text, expected] of cases) {
    assert.throws(() => parseJoinToken(text), (error: Error) => {
      assert.ok(error instanceof TypeError);
      assert.match(error.message, /^Cannot parse join token/);
      assert.match(error.message, expected, `for ${JSON.stringify(text)}: ${error.message}`);
      assert.doesNotMatch(error.message, /SECRET/, "the secret must not be echoed");
      return true;
    });
  }
});

Deno.test("a token's secret stays out of inspect and JSON", () => {
  const token = createJoinToken(CA_HASH);
  const secretText = formatJoinToken(token).split(".")[2];
  const bytes = [...token.secret].join(", ");
  for (const shown of [Deno.inspect(token), JSON.stringify(token), `${JSON.stringify([token])}`]) {
    assert.ok(shown.includes(token.id), shown);
    assert.ok(!shown.includes(secretText) && !shown.includes(bytes), shown);
    assert.match(shown, /redacted/);
  }
});

Deno.test("loadOrCreateJoinToken creates join.token with mode 0600, then reloads it", async () => {
  await withTempDir(async (dir) => {
    const created = await loadOrCreateJoinToken(dir, CA_HASH);
    const path = `${dir}/${JOIN_TOKEN_FILE}`;
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    assert.equal(await Deno.readTextFile(path), formatJoinToken(created) + "\n");
    const loaded = await loadOrCreateJoinToken(dir, CA_HASH);
    assert.equal(loaded.id, created.id);
    assert.ok(sameSecret(loaded.secret, created.secret));
  });
});

Deno.test("loadOrCreateJoinToken refuses a token made for another CA", async () => {
  await withTempDir(async (dir) => {
    const token = await loadOrCreateJoinToken(dir, CA_HASH);
    const before = await Deno.readTextFile(`${dir}/${JOIN_TOKEN_FILE}`);
    await assert.rejects(loadOrCreateJoinToken(dir, OTHER_CA_HASH), (error: Error) => {
      assert.ok(error.message.includes(token.id), error.message);
      assert.ok(error.message.includes(CA_HASH) && error.message.includes(OTHER_CA_HASH));
      assert.match(error.message, /ca\.crt was replaced/);
      assert.ok(!error.message.includes(before.split(".")[2]), "no secret in the message");
      return true;
    });
    assert.equal(await Deno.readTextFile(`${dir}/${JOIN_TOKEN_FILE}`), before, "kept as is");
  });
});

Deno.test("loadOrCreateJoinToken refuses a corrupt or loose token file", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/${JOIN_TOKEN_FILE}`;
    await Deno.writeTextFile(path, textWith({ secret: "SECRETSECRET" }), { mode: 0o600 });
    await assert.rejects(loadOrCreateJoinToken(dir, CA_HASH), (error: Error) => {
      assert.ok(error.message.startsWith(`Cannot load join token from ${path}: its secret`));
      assert.match(error.message, /delete it to create a new token/);
      assert.doesNotMatch(error.message, /SECRET/);
      return true;
    });
    await Deno.writeTextFile(path, formatJoinToken(createJoinToken(CA_HASH)));
    await Deno.chmod(path, 0o644);
    await assert.rejects(loadOrCreateJoinToken(dir, CA_HASH), /chmod 600/);
  });
});

Deno.test("sameSecret compares contents and lengths", () => {
  const a = new Uint8Array([1, 2, 3, 4]);
  assert.ok(sameSecret(a, Uint8Array.from(a)));
  assert.ok(!sameSecret(a, new Uint8Array([1, 2, 3, 5])));
  assert.ok(!sameSecret(a, new Uint8Array([0, 2, 3, 4])));
  assert.ok(!sameSecret(a, new Uint8Array([1, 2, 3])));
  assert.ok(sameSecret(new Uint8Array(0), new Uint8Array(0)));
});

Deno.test("caHashOf is base64url SHA-256 without padding", async () => {
  const der = crypto.getRandomValues(new Uint8Array(300));
  // The reference is Web Crypto's SHA-256, an implementation apart from the one under test.
  const expected = new Uint8Array(await crypto.subtle.digest("SHA-256", der))
    .toBase64({ alphabet: "base64url", omitPadding: true });
  assert.equal(caHashOf(der), expected);
  assert.ok(isCaHash(expected));
  assert.ok(!isCaHash(expected + "="));
  assert.ok(!isCaHash(expected.slice(1)));
});
