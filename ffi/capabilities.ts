/**
 * The process's effective capabilities, asked with capget(2): what the kernel will let this
 * agent do (create a TAP: CAP_NET_ADMIN; capture: CAP_NET_RAW), without reading
 * /proc/self/status, which Deno's permissions refuse short of --allow-all.
 *
 * @module
 */

import { libc } from "./libc.ts";

/** Capability numbers the agent cares about (linux/capability.h). */
export const CAP_NET_ADMIN = 12;
export const CAP_NET_RAW = 13;

/** `_LINUX_CAPABILITY_VERSION_3`: 64-bit sets in two 32-bit words. */
const CAPABILITY_VERSION_3 = 0x20080522;

/**
 * Whether this thread holds capability `cap` in its effective set; null when capget fails.
 *
 * @example
 * ```ts
 * import { CAP_NET_ADMIN, hasCapability } from "./capabilities.ts";
 * const has = hasCapability(CAP_NET_ADMIN);
 * if (has !== null && Deno.uid() === 0 && !has) console.log("root without CAP_NET_ADMIN");
 * ```
 */
export function hasCapability(cap: number): boolean | null {
  const header = new Uint32Array([CAPABILITY_VERSION_3, 0]); // pid 0: this thread
  const data = new Uint32Array(6); // two { effective, permitted, inheritable }
  if (libc().capget(header, data) !== 0) return null;
  const word = data[(cap >> 5) * 3];
  return ((word >>> (cap & 31)) & 1) === 1;
}
