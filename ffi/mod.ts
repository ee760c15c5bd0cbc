/**
 * Deno FFI bindings to the kernel and libpcap, and nothing else: the agent's devices are built
 * on them. Everything here is synchronous except the waits, which are single non-blocking
 * polls; failures carry the call, errno and what to do ({@linkcode SyscallError}) or
 * libpcap's own text ({@linkcode PcapError}).
 *
 * - {@linkcode Tap}: a TAP interface from /dev/net/tun, optionally with virtio-net headers
 *   and TSO/checksum offload.
 * - {@linkcode PcapHandle}: capture frames arriving on an interface and inject frames into it.
 * - {@linkcode libc}: the libc symbols and the errno helpers, for other bindings.
 *
 * Libraries are opened on first use; this module does nothing at import. Using it needs
 * `--allow-ffi`; libpcap's location may be overridden with `VNET_LIBPCAP`
 * (`--allow-env=VNET_LIBPCAP`).
 *
 * @example Refusing an interface name the kernel would truncate (no privileges needed)
 * ```ts
 * import { Tap } from "./mod.ts";
 * let message = "";
 * try {
 *   Tap.create({ name: "name-of-sixteen!", vnetHdr: true, offload: false });
 * } catch (e) {
 *   message = (e as Error).message;
 * }
 * if (!message.includes("Linux allows 1 to 15")) throw new Error(message);
 * ```
 *
 * @module
 */

export { EAGAIN, errnoName, hintFor, PcapError, SyscallError } from "./errors.ts";
export type { SyscallErrorOptions } from "./errors.ts";
export { errno, FdWaiter, lastError, libc } from "./libc.ts";
export type { FailedCall, LibcSymbols } from "./libc.ts";
export { Tap } from "./tap.ts";
export { CAP_NET_ADMIN, CAP_NET_RAW, hasCapability } from "./capabilities.ts";
export type { TapOptions } from "./tap.ts";
export { LIBPCAP_CANDIDATES, PcapHandle } from "./pcap.ts";
export type { PcapOptions, PcapStats } from "./pcap.ts";
