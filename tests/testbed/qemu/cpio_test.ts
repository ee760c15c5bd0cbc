/**
 * The initramfs writer: what the kernel unpacks must be exactly what was put in. Checked
 * against GNU cpio (or busybox cpio) as the reference reader, where one is installed.
 */
import { assert, assertEquals, assertThrows } from "../../support/assert.ts";
import { type CpioEntry, encodeCpio } from "../../../testbed/qemu/cpio.ts";

function reader(): string[] | null {
  for (const cmd of [["cpio"], ["busybox", "cpio"]]) {
    try {
      const out = new Deno.Command(cmd[0], {
        args: [...cmd.slice(1), "--help"],
        stderr: "null",
        stdout: "null",
      })
        .outputSync();
      if (out.code === 0 || out.code === 1) return cmd;
    } catch { /* not installed */ }
  }
  return null;
}

const cpio = reader();

Deno.test("cpio: every entry is 4-byte aligned and the archive ends with the trailer", () => {
  const bytes = encodeCpio([
    { kind: "dir", path: "a" },
    { kind: "file", path: "a/x", data: new Uint8Array([1, 2, 3]) },
  ]);
  assertEquals(bytes.length % 4, 0);
  const text = new TextDecoder("latin1").decode(bytes);
  assertEquals(text.match(/070701/g)?.length, 3, "three headers: dir, file, trailer");
  assert(text.includes("TRAILER!!!\0"), "trailer");
  // The file's 3 bytes start on a 4-byte boundary right after its padded name.
  const at = text.indexOf("a/x\0");
  const data = at + 4 + ((4 - ((110 + 4) % 4)) % 4);
  assertEquals([...bytes.subarray(data, data + 3)], [1, 2, 3]);
});

Deno.test("cpio: same entries, same bytes (no time stamps)", () => {
  const e: CpioEntry[] = [{ kind: "file", path: "f", data: new Uint8Array(5) }];
  assertEquals([...encodeCpio(e)], [...encodeCpio(e)]);
});

Deno.test("cpio: absolute and parent paths are refused", () => {
  assertThrows(() => encodeCpio([{ kind: "dir", path: "/etc" }]), RangeError, "relative");
  assertThrows(
    () => encodeCpio([{ kind: "file", path: "a/../../x", data: new Uint8Array() }]),
    RangeError,
    "relative",
  );
});

Deno.test({
  name: `cpio: a reference reader extracts files, modes and links intact${
    cpio ? "" : " (skipped: no cpio or busybox installed)"
  }`,
  ignore: !cpio,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      // Sizes around the 4-byte padding, and a binary blob.
      const files = [0, 1, 2, 3, 4, 5, 4097].map((n, i) => ({
        path: `d/sub/f${i}`,
        data: crypto.getRandomValues(new Uint8Array(n)),
      }));
      const archive = encodeCpio([
        { kind: "dir", path: "d" },
        { kind: "dir", path: "d/sub", mode: 0o700 },
        ...files.map((f) => ({ kind: "file" as const, ...f, mode: 0o640 })),
        { kind: "file", path: "d/run", data: new TextEncoder().encode("#!/bin/sh\n"), mode: 0o755 },
        { kind: "symlink", path: "d/link", target: "sub/f6" },
      ]);
      const child = new Deno.Command(cpio![0], {
        args: [...cpio!.slice(1), "-i", "-d", "-m"],
        cwd: dir,
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const w = child.stdin.getWriter();
      await w.write(archive);
      await w.close();
      const out = await child.output();
      assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
      for (const f of files) {
        assertEquals([...await Deno.readFile(`${dir}/${f.path}`)], [...f.data], f.path);
        assertEquals((await Deno.stat(`${dir}/${f.path}`)).mode! & 0o777, 0o640, f.path);
      }
      assertEquals((await Deno.stat(`${dir}/d/run`)).mode! & 0o777, 0o755);
      assertEquals((await Deno.stat(`${dir}/d/sub`)).mode! & 0o777, 0o700);
      assertEquals(await Deno.readLink(`${dir}/d/link`), "sub/f6");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
