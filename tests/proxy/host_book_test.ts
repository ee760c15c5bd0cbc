/**
 * The host book on disk: no admission lost when first joins race (they used to: 91 of 200),
 * the file private and readable back, a version-1 file migrated, revocation persisted, and a
 * damaged file refused with the fix.
 */
import { assert, assertEquals, assertRejects } from "../support/assert.ts";
import { HostBook } from "../../proxy/host_book.ts";

Deno.test("host book: 200 racing first joins are all on disk, mode 0600", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const book = await HostBook.load(dir);
    const names = Array.from({ length: 200 }, (_, i) => `h${i}`);
    const secrets = await Promise.all(
      names.map((n, i) => book.admit(n, `SHA256:k${i}`, null, 1000 + i)),
    );
    assertEquals(new Set(secrets).size, 200, "every host its own secret");
    assertEquals(book.writes, 1, "one turn's admissions share one write");
    assertEquals((await Deno.stat(`${dir}/hosts.json`)).mode! & 0o777, 0o600);
    const again = await HostBook.load(dir);
    assertEquals(again.list().map((r) => r.name).sort(), names.sort());
    assertEquals(again.get("h7")?.key, "SHA256:k7");
    assertEquals(
      again.secretOf("h7")?.toBase64({ alphabet: "base64url", omitPadding: true }),
      secrets[7],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("host book: a failed write fails its turn's admissions; the next turn writes all", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const book = await HostBook.load(dir);
    await Deno.chmod(dir, 0o500);
    if (Deno.uid() === 0) {
      // root writes through a 0500 directory: take the directory away instead.
      await Deno.remove(dir, { recursive: true });
    }
    const failed = await Promise.allSettled(
      ["a", "b"].map((n) => book.admit(n, `SHA256:${n}`, null, 1)),
    );
    assertEquals(failed.map((r) => r.status), ["rejected", "rejected"]);
    const reason = (failed[0] as PromiseRejectedResult).reason as Error;
    assert(/Cannot write secret file .*hosts\.json/.test(reason.message), reason.message);
    await Deno.mkdir(dir, { recursive: true });
    await Deno.chmod(dir, 0o700);
    await book.admit("c", "SHA256:c", null, 2);
    const again = await HostBook.load(dir);
    assertEquals(again.list().map((r) => r.name), ["a", "b", "c"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("host book: a name stays with its key; revocation frees it and denies the key", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const book = await HostBook.load(dir);
    const s1 = await book.admit("a", "SHA256:one", { serial: "0a", notAfter: 5 }, 1);
    assertEquals(await book.admit("a", "SHA256:one", null, 2), s1, "the same key keeps its secret");
    await assertRejects(() => book.admit("a", "SHA256:two", null, 3), Error, "another key");
    assertEquals(book.get("a")?.certSerial, "0a");
    assertEquals((await book.revoke("a", 10))?.key, "SHA256:one");
    assertEquals(book.get("a"), undefined);
    assertEquals(book.revocationOf("SHA256:one")?.name, "a");
    assertEquals(await book.revoke("a", 11), null);
    const again = await HostBook.load(dir);
    assertEquals(again.revoked(), [{ key: "SHA256:one", name: "a", at: 10 }]);
    await again.admit("a", "SHA256:two", null, 12); // the name is free for a new key
    assertEquals(again.get("a")?.key, "SHA256:two");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("host book: a version-1 file is read, and its keys bound on the next join", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/hosts.json`, JSON.stringify({ old: "c2VjcmV0" }), {
      mode: 0o600,
    });
    const book = await HostBook.load(dir);
    assertEquals(book.get("old")?.key, null);
    assertEquals(await book.admit("old", "SHA256:k", null, 5), "c2VjcmV0", "the secret stays");
    assertEquals((await HostBook.load(dir)).get("old")?.key, "SHA256:k");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("host book: a damaged file is refused with what to do", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/hosts.json`, "{not json", { mode: 0o600 });
    const e = await HostBook.load(dir).then(() => null, (e) => e as Error);
    assert(e && e.message.includes("not JSON") && e.message.includes("delete it"), String(e));
    await Deno.writeTextFile(`${dir}/hosts.json`, '{"version": 9}', { mode: 0o600 });
    await assertRejects(() => HostBook.load(dir), Error, "version 9");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
