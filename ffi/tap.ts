/**
 * A Linux TAP device through /dev/net/tun: create it, configure it with interface ioctls, and
 * move Ethernet frames (optionally behind a virtio-net header) with synchronous reads and
 * writes on a non-blocking descriptor, waiting with one non-blocking poll when it is empty.
 *
 * @module
 */

import { CAP_NET_ADMIN, hasCapability } from "./capabilities.ts";
import { EAGAIN, errnoName } from "./errors.ts";
import {
  AF_INET,
  cString,
  errno,
  IFNAMSIZ,
  lastError,
  libc,
  O_CLOEXEC,
  O_NONBLOCK,
  O_RDWR,
  readCString,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  writeInterfaceName,
} from "./libc.ts";
import { ReadyWaiter } from "./event_loop_poller.ts";

// <linux/if_tun.h>
const IFF_TAP = 0x0002;
const IFF_NO_PI = 0x1000;
const IFF_VNET_HDR = 0x4000;
const TUNSETIFF = 0x400454can; // _IOW('T', 202, int)
const TUNSETOFFLOAD = 0x400454d0n; // _IOW('T', 208, unsigned int)
const TUNSETVNETHDRSZ = 0x400454d8n; // _IOW('T', 216, int)
const TUN_F_CSUM = 0x01;
const TUN_F_TSO4 = 0x02;
const TUN_F_TSO6 = 0x04;

// <linux/sockios.h>, <net/if.h>, <net/if_arp.h>
const SIOCGIFFLAGS = 0x8913n;
const SIOCSIFFLAGS = 0x8914n;
const SIOCGIFMTU = 0x8921n;
const SIOCSIFMTU = 0x8922n;
const SIOCSIFHWADDR = 0x8924n;
const SIOCGIFHWADDR = 0x8927n;
const IFF_UP = 0x1;
const ARPHRD_ETHER = 1;

/**
 * struct ifreq on x86_64: char ifr_name[16], then a 24-byte union of which we use
 * short ifr_flags, int ifr_mtu and struct sockaddr ifr_hwaddr {u16 sa_family; u8 sa_data[14]}.
 */
const IFREQ_BYTES = 40;
const IFR_UNION = IFNAMSIZ;

/** Length of the virtio-net header that TUNSETVNETHDRSZ asks for. */
const VNET_HDR_BYTES = 10;

const TUN_PATH = "/dev/net/tun";

/** Options of {@linkcode Tap.create}. */
export interface TapOptions {
  /**
   * Interface name, at most 15 bytes; a pattern such as `vnet%d` lets the kernel pick the
   * number. Absent: the kernel assigns `tapN`. Read the result from {@linkcode Tap.name}.
   */
  name?: string;
  /** Open with IFF_VNET_HDR: every read and write starts with a 10-byte virtio-net header. */
  vnetHdr: boolean;
  /**
   * Accept and deliver checksum-offloaded and TCP segmentation (TSO4/TSO6) superframes
   * (TUNSETOFFLOAD). Needs `vnetHdr`, since the header is what describes them.
   */
  offload: boolean;
}

/**
 * A TAP device owned by this process. The interface exists while the descriptor is open
 * (it is not made persistent): {@linkcode close} removes it.
 *
 * Interface settings (up, MTU, MAC) go through an AF_INET datagram socket of the network
 * namespace the TAP was created in; after the interface is moved to another namespace, reads
 * and writes keep working but those settings must be made there (e.g. with `ip -n`).
 *
 * @example Create a TAP with a kernel-chosen name, bring it up and wait for a frame
 * ```ts
 * import { Tap } from "./tap.ts";
 * // Creating a TAP needs root (CAP_NET_ADMIN); without it there is nothing to show.
 * if (Deno.uid() === 0) {
 *   const tap = Tap.create({ name: "vnet%d", vnetHdr: true, offload: true });
 *   try {
 *     tap.setMtu(1500);
 *     tap.setUp();
 *     const buf = new Uint8Array(65_550);
 *     // -1: nothing to read yet (EAGAIN); wait without blocking the event loop.
 *     if (tap.readInto(buf, 0) === -1) await tap.waitReadable(100);
 *     if (!/^vnet\d+$/.test(tap.name) || tap.getMtu() !== 1500) throw new Error(tap.name);
 *   } finally {
 *     tap.close(); // removes the interface
 *   }
 * }
 * ```
 */
export class Tap {
  readonly #name: string;
  readonly #vnetHdr: boolean;
  readonly #offload: boolean;
  #fd: number;
  /** Datagram socket that carries the interface ioctls. */
  #ctl: number;
  /** One struct ifreq reused by every interface ioctl; held here while the kernel uses it. */
  readonly #ifr = new Uint8Array(IFREQ_BYTES);
  readonly #ifrView = new DataView(this.#ifr.buffer);
  readonly #waiter: ReadyWaiter;

  private constructor(fd: number, ctl: number, name: string, options: TapOptions) {
    this.#fd = fd;
    this.#ctl = ctl;
    this.#name = name;
    this.#vnetHdr = options.vnetHdr;
    this.#offload = options.offload;
    this.#waiter = new ReadyWaiter(fd);
  }

  /**
   * Creates a TAP interface (left down) and opens it non-blocking.
   *
   * @throws {RangeError} when the name is longer than 15 bytes, or offload without vnetHdr.
   * @throws {SyscallError} when the kernel refuses (not root, no tun module, name in use).
   */
  static create(options: TapOptions): Tap {
    if (options.offload && !options.vnetHdr) {
      throw new RangeError("Cannot create TAP device: offload needs vnetHdr");
    }
    const ifr = new Uint8Array(IFREQ_BYTES);
    if (options.name !== undefined) writeInterfaceName(ifr, options.name);
    const wanted = options.name ?? "(name chosen by the kernel)";
    const action = "create TAP device";

    const path = cString(TUN_PATH);
    const fd = libc().open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC, 0);
    if (fd < 0) throw lastError({ syscall: "open", action, detail: TUN_PATH });
    let ctl = -1;
    try {
      const flags = IFF_TAP | IFF_NO_PI | (options.vnetHdr ? IFF_VNET_HDR : 0);
      new DataView(ifr.buffer).setUint16(IFR_UNION, flags, true);
      if (libc().ioctl(fd, TUNSETIFF, ifr) < 0) {
        const code = errno();
        throw lastError({
          syscall: "ioctl(TUNSETIFF)",
          action,
          detail: wanted,
          // The capability is checked where the kernel keeps it, not inferred from errno: in
          // rare runs the errno read after the call is not the call's.
          hint: lacksNetAdmin()
            ? "This process lacks CAP_NET_ADMIN: run as root, or grant it (systemd: " +
              "AmbientCapabilities=CAP_NET_ADMIN; elsewhere: setpriv --ambient-caps +net_admin)."
            : errnoName(code) === "EINVAL"
            ? "An interface with this name may exist already and not be a TAP; pick another."
            : undefined,
        }, code);
      }
      const name = readCString(ifr.subarray(0, IFNAMSIZ));
      if (options.vnetHdr) {
        const size = new Int32Array([VNET_HDR_BYTES]);
        if (libc().ioctl(fd, TUNSETVNETHDRSZ, size) < 0) {
          throw lastError({ syscall: "ioctl(TUNSETVNETHDRSZ)", action, detail: name });
        }
      }
      if (options.offload) {
        const features = BigInt(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6);
        if (libc().ioctlInt(fd, TUNSETOFFLOAD, features) < 0) {
          throw lastError({ syscall: "ioctl(TUNSETOFFLOAD)", action, detail: name });
        }
      }
      ctl = libc().socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      if (ctl < 0) throw lastError({ syscall: "socket(AF_INET)", action, detail: name });
      return new Tap(fd, ctl, name, options);
    } catch (e) {
      if (ctl >= 0) libc().close(ctl);
      libc().close(fd);
      throw e;
    }
  }

  /** The interface name the kernel gave the TAP. */
  get name(): string {
    return this.#name;
  }

  /** True when reads and writes carry a 10-byte virtio-net header. */
  get vnetHdr(): boolean {
    return this.#vnetHdr;
  }

  /** True when the TAP takes and gives checksum-offloaded and TSO superframes. */
  get offload(): boolean {
    return this.#offload;
  }

  /** The descriptor (-1 after close). */
  get fd(): number {
    return this.#fd;
  }

  /** True after {@linkcode close}. */
  get closed(): boolean {
    return this.#fd < 0;
  }

  /** Brings the interface up (IFF_UP), keeping its other flags. */
  setUp(): void {
    this.#interfaceIoctl(SIOCGIFFLAGS, "ioctl(SIOCGIFFLAGS)", "read interface flags");
    const flags = this.#ifrView.getUint16(IFR_UNION, true);
    this.#ifrView.setUint16(IFR_UNION, flags | IFF_UP, true);
    this.#interfaceIoctl(SIOCSIFFLAGS, "ioctl(SIOCSIFFLAGS)", "bring interface up");
  }

  /** Sets the MTU (bytes of IP packet per frame, 68..65535). */
  setMtu(mtu: number): void {
    if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65_535) {
      throw new RangeError(`Cannot set MTU of ${this.#name}: ${mtu} is not in 68..65535`);
    }
    this.#ifrView.setInt32(IFR_UNION, mtu, true);
    this.#interfaceIoctl(SIOCSIFMTU, "ioctl(SIOCSIFMTU)", "set MTU");
  }

  /** The interface MTU. */
  getMtu(): number {
    this.#interfaceIoctl(SIOCGIFMTU, "ioctl(SIOCGIFMTU)", "read MTU");
    return this.#ifrView.getInt32(IFR_UNION, true);
  }

  /** Sets the interface's Ethernet address; it must be 6 bytes and unicast. */
  setMac(mac: Uint8Array): void {
    if (mac.length !== 6 || (mac[0] & 1) !== 0) {
      throw new RangeError(
        `Cannot set MAC address of ${this.#name}: need 6 bytes with the multicast bit clear, ` +
          `got [${Array.from(mac).join(", ")}]`,
      );
    }
    this.#ifr.fill(0, IFR_UNION);
    this.#ifrView.setUint16(IFR_UNION, ARPHRD_ETHER, true);
    this.#ifr.set(mac, IFR_UNION + 2);
    this.#interfaceIoctl(SIOCSIFHWADDR, "ioctl(SIOCSIFHWADDR)", "set MAC address");
  }

  /** The interface's Ethernet address (a fresh 6-byte copy). */
  getMac(): Uint8Array {
    this.#interfaceIoctl(SIOCGIFHWADDR, "ioctl(SIOCGIFHWADDR)", "read MAC address");
    return this.#ifr.slice(IFR_UNION + 2, IFR_UNION + 8);
  }

  /**
   * Reads one packet into `buf` at `offset`, without waiting. Returns its length, or -1 when
   * nothing is queued (EAGAIN). With vnetHdr the packet starts with the 10-byte header; a
   * buffer shorter than the packet receives a truncated packet, so size it for the largest
   * (65,550 bytes with offload).
   *
   * @throws {SyscallError} for any other failure.
   */
  readInto(buf: Uint8Array, offset: number): number {
    this.#assertOpen("read from");
    const view = offset === 0 ? buf : buf.subarray(offset);
    const n = libc().read(this.#fd, view, BigInt(view.length));
    if (n >= 0n) return Number(n);
    const code = errno();
    if (code === EAGAIN) return -1;
    throw lastError({ syscall: "read", action: "read from TAP device", detail: this.#name }, code);
  }

  /**
   * Writes one packet (with its 10-byte header when vnetHdr). Returns the bytes written, or
   * -1 when the kernel's queue is full (EAGAIN).
   *
   * @throws {SyscallError} for any other failure (e.g. EINVAL for a malformed header, EIO
   * while the interface is down).
   */
  write(buf: Uint8Array): number {
    this.#assertOpen("write to");
    const n = libc().write(this.#fd, buf, BigInt(buf.length));
    if (n >= 0n) return Number(n);
    const code = errno();
    if (code === EAGAIN) return -1;
    throw lastError({ syscall: "write", action: "write to TAP device", detail: this.#name }, code);
  }

  /**
   * Waits up to `timeoutMs` for a packet with one non-blocking poll. Resolves true when one
   * may be ready (or the descriptor is in error, which the next read reports), false on
   * timeout or after {@linkcode close}.
   */
  waitReadable(timeoutMs: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    return this.#waiter.wait(timeoutMs);
  }

  /**
   * Closes the descriptor, which removes the interface. Safe to call twice. If a wait is
   * pending, the kernel drops the interface when that poll returns (within its timeout).
   */
  close(): void {
    if (this.closed) return;
    libc().close(this.#ctl);
    libc().close(this.#fd);
    this.#ctl = -1;
    this.#fd = -1;
  }

  #assertOpen(what: string): void {
    if (this.closed) throw new Error(`Cannot ${what} TAP device: ${this.#name} is closed`);
  }

  /** Fills in the name and runs one interface ioctl on #ifr through the control socket. */
  #interfaceIoctl(request: bigint, syscall: string, action: string): void {
    if (this.closed) throw new Error(`Cannot ${action}: TAP device ${this.#name} is closed`);
    writeInterfaceName(this.#ifr, this.#name);
    if (libc().ioctl(this.#ctl, request, this.#ifr) < 0) {
      throw lastError({ syscall, action, detail: this.#name });
    }
  }
}

/** True when this process's effective capabilities lack CAP_NET_ADMIN (false if unknown). */
function lacksNetAdmin(): boolean {
  return hasCapability(CAP_NET_ADMIN) === false;
}

/**
 * Whether /dev/net/tun can be opened here: null when it can, else why not (with the hint).
 * Opened, not stat-ed: Deno's permissions refuse a stat of a device file short of --allow-all.
 */
export function tunUnavailable(): string | null {
  const fd = libc().open(cString(TUN_PATH), O_RDWR | O_CLOEXEC, 0);
  if (fd < 0) {
    return lastError({ syscall: "open", action: "open the TUN device", detail: TUN_PATH }).message;
  }
  libc().close(fd);
  return null;
}
