/**
 * Errors raised by the FFI bindings. A failed system call becomes a {@linkcode SyscallError}
 * that carries the call, the errno, its symbolic name and a hint saying what the operator can
 * do about it; a failed libpcap call becomes a {@linkcode PcapError} carrying libpcap's own text.
 *
 * @module
 */

/** Symbolic names of the Linux errno values the bindings can meet (x86_64 numbering). */
const ERRNO_NAMES: Readonly<Record<number, string>> = {
  1: "EPERM",
  2: "ENOENT",
  4: "EINTR",
  5: "EIO",
  6: "ENXIO",
  9: "EBADF",
  11: "EAGAIN",
  12: "ENOMEM",
  13: "EACCES",
  14: "EFAULT",
  16: "EBUSY",
  17: "EEXIST",
  19: "ENODEV",
  22: "EINVAL",
  23: "ENFILE",
  24: "EMFILE",
  25: "ENOTTY",
  28: "ENOSPC",
  36: "ENAMETOOLONG",
  38: "ENOSYS",
  77: "EBADFD",
  90: "EMSGSIZE",
  95: "EOPNOTSUPP",
  97: "EAFNOSUPPORT",
  99: "EADDRNOTAVAIL",
  100: "ENETDOWN",
  105: "ENOBUFS",
};

/** errno of a would-block result on a non-blocking descriptor. */
export const EAGAIN = 11;

/**
 * The symbolic name of a Linux errno value, or `E<n>` when the table does not know it.
 *
 * @example
 * ```ts
 * import { errnoName } from "./errors.ts";
 * if (errnoName(1) !== "EPERM" || errnoName(4095) !== "E4095") throw new Error("name");
 * ```
 */
export function errnoName(errno: number): string {
  return ERRNO_NAMES[errno] ?? `E${errno}`;
}

/**
 * What an operator can do about a failed call, judged from the errno and the object the call
 * was about (a path such as `/dev/net/tun`, or an interface name). Empty when there is nothing
 * useful to say.
 *
 * @example
 * ```ts
 * import { hintFor } from "./errors.ts";
 * if (hintFor(2, "/dev/net/tun") !== "Load the tun module: modprobe tun.") throw new Error("hint");
 * ```
 */
export function hintFor(errno: number, target = ""): string {
  switch (errnoName(errno)) {
    case "EPERM":
      return "Run as root or grant CAP_NET_ADMIN (systemd: AmbientCapabilities=CAP_NET_ADMIN).";
    case "EACCES":
      return target.startsWith("/dev/")
        ? `Run as root, or give this user read-write access to ${target} and CAP_NET_ADMIN.`
        : "Run as root or grant CAP_NET_ADMIN (systemd: AmbientCapabilities=CAP_NET_ADMIN).";
    case "ENOENT":
      return target === "/dev/net/tun" ? "Load the tun module: modprobe tun." : "";
    case "ENODEV":
    case "ENXIO":
      return target === "/dev/net/tun"
        ? "Load the tun module: modprobe tun."
        : "Interface not found: check the name with `ip link`.";
    case "EBUSY":
      return "The interface is in use by another process; pick another name.";
    case "EMFILE":
    case "ENFILE":
      return "Too many open files: raise the limit (ulimit -n).";
    default:
      return "";
  }
}

/** Fields of a {@linkcode SyscallError}. */
export interface SyscallErrorOptions {
  /** The C function that failed, e.g. `ioctl(TUNSETIFF)`. */
  syscall: string;
  /** errno read right after the failure. */
  errno: number;
  /** What was being done, completing "Cannot ...", e.g. `create TAP device`. */
  action: string;
  /** Which object it was about, e.g. `vnet0` or `/dev/net/tun`. */
  detail: string;
  /** libc's text for the errno (strerror); the symbolic name is used when absent. */
  description?: string;
  /** What to do about it; derived from errno and detail when absent. */
  hint?: string;
}

/**
 * A system call failed. The message reads
 * `Cannot <action>: <detail>: <syscall> failed (errno N ECODE: strerror). <hint>`.
 *
 * @example
 * ```ts
 * import { SyscallError } from "./errors.ts";
 * const e = new SyscallError({
 *   syscall: "open", errno: 2, action: "open TAP control device", detail: "/dev/net/tun",
 *   description: "No such file or directory",
 * });
 * if (e.code !== "ENOENT" || !e.message.includes("modprobe tun")) throw new Error(e.message);
 * ```
 */
export class SyscallError extends Error {
  /** The C function that failed. */
  readonly syscall: string;
  /** The errno value. */
  readonly errno: number;
  /** Symbolic errno name, e.g. `EPERM`. */
  readonly code: string;
  /** What to do about it; may be empty. */
  readonly hint: string;

  constructor(options: SyscallErrorOptions) {
    const code = errnoName(options.errno);
    const hint = options.hint ?? hintFor(options.errno, options.detail);
    const description = options.description ?? code;
    super(
      `Cannot ${options.action}: ${options.detail}: ${options.syscall} failed ` +
        `(errno ${options.errno} ${code}: ${description}).` +
        (hint ? ` ${hint}` : ""),
    );
    this.name = "SyscallError";
    this.syscall = options.syscall;
    this.errno = options.errno;
    this.code = code;
    this.hint = hint;
  }
}

/**
 * A libpcap call failed; the message carries libpcap's own explanation (pcap_geterr or the
 * error buffer), which names the interface and the underlying cause.
 *
 * @example
 * ```ts
 * import { PcapError } from "./errors.ts";
 * const e = new PcapError("pcap_activate", -5, "capture on eth9", "No such device exists");
 * if (!e.message.startsWith("Cannot capture on eth9: ")) throw new Error(e.message);
 * ```
 */
export class PcapError extends Error {
  /** The libpcap function that failed. */
  readonly func: string;
  /** Its return value (a PCAP_ERROR_* status, or -1). */
  readonly status: number;

  constructor(func: string, status: number, action: string, pcapText: string) {
    super(`Cannot ${action}: ${pcapText} (${func} returned ${status})`);
    this.name = "PcapError";
    this.func = func;
    this.status = status;
  }
}
