/**
 * C strings and interface names at the FFI boundary: encoded and checked here, before any
 * system call, so a name the kernel would truncate or a string with an embedded NUL is refused
 * with a clear error instead of acting on another object. Pure byte work: nothing is loaded.
 *
 * @module
 */

/** Size of an interface name buffer (IFNAMSIZ), NUL included: names have at most 15 bytes. */
export const IFNAMSIZ = 16;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * `text` as a NUL-terminated C string (UTF-8).
 *
 * @throws {TypeError} when `text` contains a NUL, which C would read as its end.
 * @example
 * ```ts
 * import { cString } from "./c_string.ts";
 * if (cString("tun").join() !== "116,117,110,0") throw new Error("encode");
 * ```
 */
export function cString(text: string): Uint8Array {
  const bytes = encoder.encode(text);
  if (bytes.includes(0)) {
    throw new TypeError(`Cannot encode C string: ${JSON.stringify(text)} contains a NUL byte`);
  }
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

/**
 * The NUL-terminated string at the start of `bytes` (the whole array when there is no NUL).
 *
 * @example
 * ```ts
 * import { readCString } from "./c_string.ts";
 * if (readCString(new Uint8Array([116, 97, 112, 48, 0, 9])) !== "tap0") throw new Error("decode");
 * ```
 */
export function readCString(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return decoder.decode(end < 0 ? bytes : bytes.subarray(0, end));
}

/**
 * Writes an interface name into the first {@linkcode IFNAMSIZ} bytes of `into` (zero-padded),
 * refusing names the kernel would truncate or reject before any system call is made.
 *
 * @example
 * ```ts
 * import { writeInterfaceName } from "./c_string.ts";
 * const ifr = new Uint8Array(40);
 * writeInterfaceName(ifr, "vnet0");
 * let refused = false;
 * try { writeInterfaceName(ifr, "a-name-of-16-chr"); } catch { refused = true; }
 * if (!refused) throw new Error("a 16-byte name must be refused");
 * ```
 */
export function writeInterfaceName(into: Uint8Array, name: string): void {
  const bytes = encoder.encode(name);
  if (bytes.length === 0 || bytes.length >= IFNAMSIZ) {
    throw new RangeError(
      `Cannot use interface name ${JSON.stringify(name)}: it has ${bytes.length} bytes, ` +
        `Linux allows 1 to ${IFNAMSIZ - 1}`,
    );
  }
  if (bytes.includes(0) || bytes.includes(0x2f) || /\s/.test(name)) {
    throw new RangeError(
      `Cannot use interface name ${JSON.stringify(name)}: it contains a NUL, '/' or whitespace`,
    );
  }
  into.fill(0, 0, IFNAMSIZ);
  into.set(bytes);
}
