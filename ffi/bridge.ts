/**
 * Enslaving an interface to an existing Linux bridge with the SIOCBRADDIF ioctl, so that
 * `--tap NAME --bridge BR` needs no `ip link set NAME master BR` from the operator or a shell.
 *
 * @module
 */

import {
  AF_INET,
  cString,
  errno,
  lastError,
  libc,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  writeInterfaceName,
} from "./libc.ts";

/** ioctl: add the interface whose index is in ifr_ifindex to the bridge named in ifr_name. */
const SIOCBRADDIF = 0x89a2n;
const ENODEV = 19;
const EINVAL = 22;

/** sizeof(struct ifreq) on Linux x86_64. */
const IFREQ_BYTES = 40;

/**
 * Adds interface `member` to bridge `bridge` (both must exist).
 *
 * @throws {SyscallError} e.g. ENODEV when either interface is missing, EPERM without
 *   CAP_NET_ADMIN, EINVAL when `bridge` is not a bridge.
 */
export function addToBridge(bridge: string, member: string): void {
  const action = "add interface to bridge";
  const detail = `${member} -> ${bridge}`;
  const index = libc().if_nametoindex(cString(member));
  if (index === 0) {
    throw lastError({
      syscall: "if_nametoindex",
      action,
      detail,
      hint: `Interface ${member} does not exist.`,
    });
  }
  const ifr = new Uint8Array(IFREQ_BYTES);
  writeInterfaceName(ifr, bridge);
  new DataView(ifr.buffer).setInt32(16, index, true); // ifr_ifindex, little-endian
  const sock = libc().socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) throw lastError({ syscall: "socket(AF_INET)", action, detail });
  try {
    if (libc().ioctl(sock, SIOCBRADDIF, ifr) < 0) {
      const code = errno();
      const notBridge = code === ENODEV || code === EINVAL;
      throw lastError({
        syscall: "ioctl(SIOCBRADDIF)",
        action,
        detail,
        hint: notBridge
          ? `Check that bridge ${bridge} exists and is a Linux bridge (ip -d link show ${bridge}).`
          : undefined,
      }, code);
    }
  } finally {
    libc().close(sock);
  }
}
