import assert from "node:assert/strict";
import {
  AF_INET,
  cString,
  errno,
  FdWaiter,
  IFNAMSIZ,
  lastError,
  libc,
  readCString,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  strerror,
  writeInterfaceName,
} from "../../ffi/libc.ts";

Deno.test("errno is read right after the failing call", () => {
  assert.equal(libc().close(-1), -1);
  assert.equal(errno(), 9); // EBADF
  assert.equal(strerror(9), "Bad file descriptor");
});

Deno.test("lastError builds a SyscallError from errno with libc's description", () => {
  const fd = libc().open(cString("/nonexistent/vnet"), 0, 0);
  assert.equal(fd, -1);
  const e = lastError({ syscall: "open", action: "open file", detail: "/nonexistent/vnet" });
  assert.equal(e.code, "ENOENT");
  assert.equal(
    e.message,
    "Cannot open file: /nonexistent/vnet: open failed (errno 2 ENOENT: No such file or directory).",
  );
});

Deno.test("C strings: NUL-terminated out, read back up to the NUL, NUL inside refused", () => {
  assert.deepEqual(cString("ab"), new Uint8Array([97, 98, 0]));
  assert.equal(readCString(new Uint8Array([118, 49, 0, 120])), "v1");
  assert.equal(readCString(new Uint8Array([118, 49])), "v1");
  assert.throws(() => cString("a\0b"), TypeError);
});

Deno.test("interface names: 1..15 bytes, zero-padded; longer, empty or odd names refused", () => {
  const ifr = new Uint8Array(40).fill(7);
  writeInterfaceName(ifr, "vnet0");
  assert.equal(readCString(ifr.subarray(0, IFNAMSIZ)), "vnet0");
  assert.ok(ifr.subarray(5, IFNAMSIZ).every((b) => b === 0));
  assert.equal(ifr[IFNAMSIZ], 7, "bytes after the name are left alone");
  writeInterfaceName(ifr, "a".repeat(15));
  for (const bad of ["a".repeat(16), "", "a/b", "a b", "é".repeat(8)]) {
    assert.throws(() => writeInterfaceName(ifr, bad), RangeError, bad);
  }
  assert.throws(
    () => writeInterfaceName(ifr, "vnet-overlay-001"),
    /Cannot use interface name "vnet-overlay-001": it has 16 bytes, Linux allows 1 to 15/,
  );
});

Deno.test("FdWaiter: an idle socket times out; one wait at a time", async () => {
  const fd = libc().socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  assert.ok(fd >= 0);
  try {
    const waiter = new FdWaiter(fd);
    assert.equal(waiter.readableNow(), false);
    const pending = waiter.wait(30);
    await assert.rejects(waiter.wait(30), /another wait on it is still pending/);
    assert.equal(await pending, false);
  } finally {
    libc().close(fd);
  }
});
