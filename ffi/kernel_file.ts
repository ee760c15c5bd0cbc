/**
 * Reads a file the kernel generates (under /sys or /proc) with open(2) and read(2). Deno's
 * file API refuses such paths to any permission short of --allow-all, which the agent must not
 * have; FFI is the agent's way to the kernel anyway (TAP, bridge, sockets).
 *
 * @module
 */

import { cString, errno, lastError, libc, O_CLOEXEC } from "./libc.ts";

const O_RDONLY = 0;
const EINTR = 4;

/**
 * The whole contents of kernel file `path` (at most `maxBytes`).
 *
 * @throws {SyscallError} naming the path and the errno when it cannot be opened or read.
 * @example
 * ```ts
 * import { readKernelFile } from "./kernel_file.ts";
 * const mtu = Number(new TextDecoder().decode(readKernelFile("/sys/class/net/lo/mtu")).trim());
 * if (!(mtu > 0)) throw new Error(`lo's MTU: ${mtu}`);
 * ```
 */
export function readKernelFile(path: string, maxBytes = 1 << 20): Uint8Array {
  const fd = libc().open(cString(path), O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) throw lastError({ syscall: "open", action: "read kernel file", detail: path });
  try {
    const buf = new Uint8Array(Math.min(maxBytes, 64 * 1024));
    const parts: Uint8Array[] = [];
    let total = 0;
    while (total < maxBytes) {
      const n = Number(libc().read(fd, buf, BigInt(Math.min(buf.length, maxBytes - total))));
      if (n < 0) {
        const code = errno();
        if (code === EINTR) continue;
        throw lastError({ syscall: "read", action: "read kernel file", detail: path }, code);
      }
      if (n === 0) break;
      parts.push(buf.slice(0, n));
      total += n;
    }
    const out = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  } finally {
    libc().close(fd);
  }
}

/** A kernel file's text, trimmed. */
export function readKernelText(path: string): string {
  return new TextDecoder().decode(readKernelFile(path)).trim();
}
