import assert from "node:assert/strict";
import { readSecretFile, writeSecretFile } from "../../agent/secret_file.ts";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "vnet_secret_file_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const modeOf = async (path: string) => (await Deno.stat(path)).mode! & 0o777;

Deno.test("writeSecretFile creates the file with mode 0600 and leaves no temp file", async () => {
  await withTempDir(async (dir) => {
    await writeSecretFile(`${dir}/key`, "first\n");
    assert.equal(await modeOf(`${dir}/key`), 0o600);
    assert.equal(await Deno.readTextFile(`${dir}/key`), "first\n");
    const names = [...Deno.readDirSync(dir)].map((e) => e.name);
    assert.deepEqual(names, ["key"]);
  });
});

Deno.test("writeSecretFile replaces an existing file, even a loose one, with a 0600 one", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/key`, "old");
    await Deno.chmod(`${dir}/key`, 0o644);
    await writeSecretFile(`${dir}/key`, "new");
    assert.equal(await modeOf(`${dir}/key`), 0o600);
    assert.equal(await readSecretFile(`${dir}/key`), "new");
  });
});

Deno.test("writeSecretFile names the path but not the secret when it cannot write", async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(writeSecretFile(`${dir}/missing/key`, "hunter2"), (error: Error) => {
      assert.match(error.message, /^Cannot write secret file .*missing\/key: /);
      assert.doesNotMatch(error.message, /hunter2/);
      return true;
    });
  });
});

Deno.test("readSecretFile refuses a file the group or others can access", async () => {
  await withTempDir(async (dir) => {
    for (const mode of [0o644, 0o640, 0o604, 0o660, 0o602]) {
      await Deno.writeTextFile(`${dir}/key`, "hunter2");
      await Deno.chmod(`${dir}/key`, mode);
      await assert.rejects(readSecretFile(`${dir}/key`), (error: Error) => {
        assert.match(error.message, /group or others/);
        assert.ok(error.message.includes(`chmod 600 ${dir}/key`), error.message);
        assert.doesNotMatch(error.message, /hunter2/);
        return true;
      });
    }
    await Deno.chmod(`${dir}/key`, 0o400);
    assert.equal(await readSecretFile(`${dir}/key`), "hunter2");
  });
});

Deno.test("readSecretFile reports a missing file as NotFound", async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(readSecretFile(`${dir}/none`), Deno.errors.NotFound);
  });
});

Deno.test("readSecretFile refuses a directory and a non-UTF-8 file", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/sub`, { mode: 0o700 });
    await assert.rejects(readSecretFile(`${dir}/sub`), /not a regular file/);
    await Deno.writeFile(`${dir}/bin`, new Uint8Array([0xff, 0xfe, 0x00]), { mode: 0o600 });
    await assert.rejects(readSecretFile(`${dir}/bin`), /not UTF-8/);
  });
});
