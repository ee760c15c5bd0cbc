/**
 * Setting kinds: each knows how to parse a value from YAML or a flag and how to describe
 * what it expects, so one schema gives validation, `--help` and the README table.
 *
 * @module
 */

import { addressBytes } from "../../ffi/socket.ts";

/** A host and port, e.g. from `--join 10.0.0.1:7800` or `listen: "[::]:7800"`. */
export interface Address {
  hostname: string;
  port: number;
}

/** Formats an address for logs and dialing (IPv6 in brackets). */
export function formatAddress(a: Address): string {
  return a.hostname.includes(":") ? `[${a.hostname}]:${a.port}` : `${a.hostname}:${a.port}`;
}

/** A refused value: the caller adds where it came from (file and key, or flag). */
export class ValueError extends Error {
  override name = "ValueError";
}

/** One setting kind: parses unknown input into T or throws {@linkcode ValueError}. */
export interface Kind<T> {
  /** What the setting expects, for errors and help, e.g. "a duration such as 500ms or 2s". */
  readonly expects: string;
  /** True for on/off flags that take no value on the command line. */
  readonly isSwitch?: boolean;
  parse(value: unknown): T;
}

function describe(value: unknown): string {
  if (typeof value === "string") return `"${value}"`;
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  return String(value);
}

/** A boolean (YAML true/false; on the command line the flag alone means true). */
export const bool: Kind<boolean> = {
  expects: "true or false",
  isSwitch: true,
  parse(v) {
    if (typeof v === "boolean") return v;
    if (v === "true") return true;
    if (v === "false") return false;
    throw new ValueError(`expected true or false, got ${describe(v)}`);
  },
};

/** A non-empty string matching `re`. */
export function text(expects: string, re = /^.+$/): Kind<string> {
  return {
    expects,
    parse(v) {
      if (typeof v === "string" && re.test(v)) return v;
      throw new ValueError(`expected ${expects}, got ${describe(v)}`);
    },
  };
}

/** An integer in [min, max]; strings of digits are accepted (flags are text). */
export function int(min: number, max: number): Kind<number> {
  const expects = `an integer from ${min} to ${max}`;
  return {
    expects,
    parse(v) {
      const n = typeof v === "string" && /^-?\d+$/.test(v.trim()) ? Number(v) : v;
      if (typeof n === "number" && Number.isInteger(n) && n >= min && n <= max) return n;
      throw new ValueError(`expected ${expects}, got ${describe(v)}`);
    },
  };
}

/** A number in [min, max]. */
export function real(min: number, max: number): Kind<number> {
  const expects = `a number from ${min} to ${max}`;
  return {
    expects,
    parse(v) {
      const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
      if (typeof n === "number" && Number.isFinite(n) && n >= min && n <= max) return n;
      throw new ValueError(`expected ${expects}, got ${describe(v)}`);
    },
  };
}

/** One of the listed words. */
export function oneOf<const T extends readonly string[]>(...choices: T): Kind<T[number]> {
  const expects = `one of ${choices.join(", ")}`;
  return {
    expects,
    parse(v) {
      if (typeof v === "string" && (choices as readonly string[]).includes(v)) {
        return v as T[number];
      }
      throw new ValueError(`expected ${expects}, got ${describe(v)}`);
    },
  };
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A duration in milliseconds: a number (ms) or text such as `250ms`, `2s`, `1.5m`, `1h`. */
export function duration(minMs: number, maxMs: number): Kind<number> {
  const expects = `a duration from ${minMs}ms to ${maxMs}ms, such as 500ms or 2s`;
  return {
    expects,
    parse(v) {
      let ms: number | undefined;
      if (typeof v === "number") ms = v;
      else if (typeof v === "string") {
        const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/.exec(v.trim());
        if (m) ms = Number(m[1]) * UNIT_MS[m[2] ?? "ms"];
      }
      if (ms !== undefined && Number.isFinite(ms) && ms >= minMs && ms <= maxMs) {
        return Math.round(ms);
      }
      throw new ValueError(`expected ${expects}, got ${describe(v)}`);
    },
  };
}

/**
 * Parses `host:port`, `[v6]:port` or `:port` (all interfaces).
 *
 * @example
 * ```ts
 * import { parseAddress } from "./types.ts";
 * const a = parseAddress("[::1]:7800");
 * if (a.hostname !== "::1" || a.port !== 7800) throw new Error();
 * ```
 */
export function parseAddress(v: unknown, allowAnyPort = false): Address {
  if (typeof v !== "string") {
    throw new ValueError(`expected an address such as 192.0.2.1:7800, got ${describe(v)}`);
  }
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s\[\]]*)):(\d{1,5})$/.exec(v.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= (allowAnyPort ? 0 : 1) && port <= 65535)) {
    throw new ValueError(
      `expected an address such as 192.0.2.1:7800, [2001:db8::1]:7800 or :7800, got ${describe(v)}`,
    );
  }
  const hostname = m[1] ?? (m[2] === "" ? "0.0.0.0" : m[2]);
  if (m[2] !== undefined && m[2] !== "" && !/^[A-Za-z0-9.-]+$/.test(m[2])) {
    throw new ValueError(`expected a host name or IP address before the port, got ${describe(v)}`);
  }
  return { hostname, port };
}

/** An address to dial; see {@linkcode parseAddress}. */
export const address: Kind<Address> = {
  expects: "an address such as 192.0.2.1:7800",
  parse: (v) => parseAddress(v),
};

/** An address to listen on; port 0 asks the kernel for any free port. */
export const listenAddress: Kind<Address> = {
  expects: "an address such as 0.0.0.0:7800 (port 0: any free port)",
  parse: (v) => parseAddress(v, true),
};

/** Makes a kind optional: null/undefined stay null. */
export function optional<T>(kind: Kind<T>): Kind<T | null> {
  return {
    expects: kind.expects,
    isSwitch: kind.isSwitch,
    parse: (v) => (v === null || v === undefined ? null : kind.parse(v)),
  };
}

/** An integer budget in [0, max], or `auto` (null: as many as needed). */
export function budget(max: number): Kind<number | null> {
  const expects = `auto or an integer from 0 to ${max}`;
  return {
    expects,
    parse(v) {
      if (v === "auto") return null;
      const n = typeof v === "string" && /^\d+$/.test(v.trim()) ? Number(v) : v;
      if (typeof n === "number" && Number.isInteger(n) && n >= 0 && n <= max) return n;
      throw new ValueError(`expected ${expects}, got ${describe(v)}`);
    },
  };
}

const HOST = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * Host pairs `a:b`, as a YAML list or comma-separated text; each becomes `[a, b]`.
 *
 * @example
 * ```ts
 * import { hostPairs } from "./types.ts";
 * const p = hostPairs.parse("h1:h2, h3:h4");
 * if (p.length !== 2 || p[1][0] !== "h3") throw new Error();
 * ```
 */
export const hostPairs: Kind<[string, string][]> = {
  expects: "host pairs such as h1:h2 (a list, or comma-separated)",
  parse(v) {
    const items = Array.isArray(v)
      ? v
      : typeof v === "string"
      ? v.split(",").map((x) => x.trim()).filter(Boolean)
      : null;
    if (items === null) {
      throw new ValueError(`expected host pairs such as h1:h2, got ${describe(v)}`);
    }
    return items.map((item) => {
      const parts = typeof item === "string" ? item.split(":") : [];
      if (
        parts.length !== 2 || !HOST.test(parts[0]) || !HOST.test(parts[1]) || parts[0] === parts[1]
      ) {
        throw new ValueError(
          `expected host pairs such as h1:h2 (two different host names), got ${describe(item)}`,
        );
      }
      return [parts[0], parts[1]] as [string, string];
    });
  },
};

/**
 * Whether `hostname` is a loopback address (or `localhost`): what only this machine reaches.
 * A wildcard (`0.0.0.0`, `::`) is not: it listens on every interface.
 *
 * @example
 * ```ts
 * import { isLoopback } from "./types.ts";
 * if (!isLoopback("127.0.0.1") || !isLoopback("::1") || isLoopback("0.0.0.0")) throw new Error();
 * ```
 */
export function isLoopback(hostname: string): boolean {
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname) || hostname === "::1" ||
    hostname === "[::1]" || hostname === "localhost";
}

/**
 * The bytes of an IPv4 or IPv6 literal as a certificate carries them (4 or 16), or null for
 * any other name (a DNS name, a zone or brackets). One parser with the socket lookup's
 * (ffi/socket.ts `addressBytes`).
 *
 * @example
 * ```ts
 * import { ipLiteralBytes } from "./types.ts";
 * if (ipLiteralBytes("10.1.2.3")?.toHex() !== "0a010203") throw new Error("IPv4: 4 bytes");
 * if (ipLiteralBytes("::1")?.length !== 16 || ipLiteralBytes("proxy.vnet") !== null) {
 *   throw new Error();
 * }
 * ```
 */
export function ipLiteralBytes(name: string): Uint8Array | null {
  if (/[%[\]]/.test(name)) return null;
  const bytes = addressBytes(name);
  if (bytes === null) return null;
  return /^[\d.]+$/.test(name) ? bytes.slice(12) : bytes;
}
