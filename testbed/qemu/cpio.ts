/**
 * The "newc" cpio format (SVR4 without CRC), which is what the Linux kernel unpacks as an
 * initramfs. Pure: entries in, bytes out; the guest image builder decides what goes in.
 *
 *     entry = "070701" + 13 fields of 8 hex digits + name + NUL, padded to 4 bytes
 *             + data, padded to 4 bytes
 *     archive = entries + "TRAILER!!!"
 *
 * The kernel creates entries in archive order, so a directory must come before its contents.
 *
 * @module
 */

import { concatBytes } from "../../agent/bytes.ts";

/** One file, directory or symbolic link of an archive. */
export type CpioEntry =
  | { kind: "dir"; path: string; mode?: number }
  | { kind: "file"; path: string; data: Uint8Array; mode?: number }
  | { kind: "symlink"; path: string; target: string };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const MAGIC = "070701";
const HEADER_LENGTH = 110;

const encoder = new TextEncoder();

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, "0");
}

/**
 * Encodes `entries` as a newc archive, in the given order, ending with the trailer.
 *
 * @example
 * ```ts
 * import { encodeCpio } from "./cpio.ts";
 * const bytes = encodeCpio([
 *   { kind: "dir", path: "bin" },
 *   { kind: "file", path: "bin/hello", data: new TextEncoder().encode("hi\n"), mode: 0o755 },
 * ]);
 * if (new TextDecoder().decode(bytes.subarray(0, 6)) !== "070701") throw new Error("magic");
 * ```
 */
export function encodeCpio(entries: readonly CpioEntry[]): Uint8Array {
  const parts: Uint8Array[] = [];
  let ino = 1;
  const push = (name: string, mode: number, data: Uint8Array, nlink: number) => {
    if (name.startsWith("/") || name.split("/").includes("..")) {
      throw new RangeError(`Cannot add "${name}" to a cpio archive: paths must be relative`);
    }
    const nameBytes = encoder.encode(name + "\0");
    const fields = [
      ino++,
      mode,
      0, // uid: root
      0, // gid: root
      nlink,
      0, // mtime: fixed, so the same entries give the same bytes
      data.length,
      0, // devmajor
      0, // devminor
      0, // rdevmajor
      0, // rdevminor
      nameBytes.length,
      0, // check: unused in newc
    ];
    parts.push(encoder.encode(MAGIC + fields.map(hex8).join("")));
    parts.push(nameBytes, new Uint8Array(pad4(HEADER_LENGTH + nameBytes.length)));
    parts.push(data, new Uint8Array(pad4(data.length)));
  };
  for (const e of entries) {
    if (e.kind === "dir") push(e.path, S_IFDIR | (e.mode ?? 0o755), new Uint8Array(0), 2);
    else if (e.kind === "file") push(e.path, S_IFREG | (e.mode ?? 0o644), e.data, 1);
    else push(e.path, S_IFLNK | 0o777, encoder.encode(e.target), 1);
  }
  ino = 0;
  push("TRAILER!!!", 0, new Uint8Array(0), 1);
  return concatBytes(...parts);
}
