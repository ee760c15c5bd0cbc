/**
 * Why a listener could not start, said so that the operator knows which setting to change:
 * the OS says "Address already in use (os error 98)" without saying which of the agent's
 * listeners it was.
 *
 * @module
 */

import { type Address, formatAddress } from "./config/types.ts";

/**
 * The error to show when listening on `address` (set by `--FLAG`) failed with `e`.
 *
 * @example
 * ```ts
 * import { explainListenError } from "./listen_error.ts";
 * const e = explainListenError(new Deno.errors.AddrInUse("os error 98"), { hostname: "0.0.0.0", port: 7800 }, "listen");
 * if (!e.message.startsWith("Cannot listen on 0.0.0.0:7800 (--listen): the address is already in use")) {
 *   throw new Error(e.message);
 * }
 * ```
 */
export function explainListenError(e: unknown, address: Address, flag: string): Error {
  const where = `Cannot listen on ${formatAddress(address)} (--${flag})`;
  if (e instanceof Deno.errors.AddrInUse) {
    return new Error(
      `${where}: the address is already in use; stop the other process there (another agent?) ` +
        `or give --${flag} another port`,
      { cause: e },
    );
  }
  if (e instanceof Deno.errors.AddrNotAvailable) {
    return new Error(
      `${where}: this machine has no such address; give --${flag} one of its own addresses, ` +
        `or :PORT for all of them`,
      { cause: e },
    );
  }
  if (e instanceof Deno.errors.PermissionDenied) {
    return new Error(
      `${where}: not permitted (ports below 1024 need CAP_NET_BIND_SERVICE); use a port above 1023`,
      { cause: e },
    );
  }
  return new Error(`${where}: ${(e as Error).message}`, { cause: e });
}
