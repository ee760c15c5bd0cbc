/**
 * Control messages carried in CONTROL frames between the proxy and hosts. Everything a peer
 * sends is validated here into a typed message or refused with a `ProtocolError`, so the
 * daemon acts only on well-formed input and never dies from what a peer sends.
 *
 * @module
 */

import { ProtocolError } from "../link/wire.ts";
import type { TrafficReport } from "../traffic/counter.ts";
import { formatMac, type Mac, parseMac } from "../switch/ethernet.ts";

/** A forwarding rule as it travels: MACs as text, `null` for "any". */
export interface WireRule {
  src: string | null;
  dst: string | null;
  target: string;
  owner?: string;
  reason?: string;
}

/** Proxy -> host: install a forwarding rule. */
export interface RuleAdd {
  type: "rule-add";
  rule: WireRule;
}

/** Proxy -> host: remove the rule for (src, dst). */
export interface RuleDel {
  type: "rule-del";
  src: string | null;
  dst: string | null;
}

/** Host -> proxy: traffic counted since the previous report (see agent/traffic/counter.ts). */
export type Traffic = TrafficReport;

/** Proxy -> host: replace every rule this owner installed with `rules`; answer rules-applied. */
export interface RulesSet {
  type: "rules-set";
  owner: string;
  seq: number;
  rules: WireRule[];
}

/** Proxy -> host (acceptor): a peer will dial with this one-time ticket within `ttlMs`. */
export interface PeerExpect {
  type: "peer-expect";
  peer: string;
  /** The dialer's key fingerprint: a revoked key is refused (see keys-revoked). */
  key: string;
  ticket: string;
  ttlMs: number;
}

/** Proxy -> host (dialer): dial `peer` at `address` and present `ticket`. */
export interface PeerConnect {
  type: "peer-connect";
  peer: string;
  /** The acceptor's key fingerprint: its certificate must carry this key's TLS name. */
  key: string;
  address: string;
  ticket: string;
}

/**
 * Proxy -> host: the VM MACs that live behind `peer`, the only sources its fast path may
 * carry. `set` replaces the list (sent before a fast path to `peer` is set up, on the same
 * link as the instruction, so it is there before the first frame); `add`/`remove` follow the
 * proxy's MAC table as VMs appear and move.
 */
export interface PeerMacs {
  type: "peer-macs";
  peer: string;
  change: "set" | "add" | "remove";
  macs: string[];
}

/**
 * Proxy -> host: this host's certificate, renewed before the current one expires; the host
 * presents it on its fast-path listener from now on.
 */
export interface Certificate {
  type: "certificate";
  certificate: string;
}

/**
 * Proxy -> host: every revoked key (the whole list, on join and on each revocation). A host
 * sets up no fast path with a revoked key and closes one it has.
 */
export interface KeysRevoked {
  type: "keys-revoked";
  keys: string[];
}

/** Most keys a keys-revoked message may carry (the proxy keeps at most 10,000). */
export const MAX_REVOKED_KEYS = 10_000;

/** Most MACs one peer-macs message may carry (the proxy's per-host bound is far lower). */
export const MAX_PEER_MACS = 100_000;

/** Proxy -> host: close the fast-path link to `peer`. */
export interface PeerClose {
  type: "peer-close";
  peer: string;
  reason: string;
}

/** Host -> proxy: where this host accepts fast-path links (`:PORT` = the address it joined from). */
export interface Listening {
  type: "listening";
  address: string;
}

/** Host -> proxy: a fast-path link to `peer` came up or went down. */
export interface PeerState {
  type: "peer-up" | "peer-down";
  peer: string;
  reason?: string;
}

/** Host -> proxy: rules-set `seq` is in force. */
export interface RulesApplied {
  type: "rules-applied";
  owner: string;
  seq: number;
}

/** Proxy -> host: a VM that lived here now lives behind `to`; forget it as local. */
export interface MacMoved {
  type: "mac-moved";
  mac: string;
  to: string;
}

/**
 * Proxy -> host: another host claims `mac`, which lives here. Is the VM still on this host's
 * network? Answer with mac-status.
 */
export interface MacCheck {
  type: "mac-check";
  mac: string;
}

/** Host -> proxy: whether `mac` is still on this host's network (after a mac-check). */
export interface MacStatus {
  type: "mac-status";
  mac: string;
  present: boolean;
}

/** What the proxy sends a host. */
export type ProxyMessage =
  | MacMoved
  | MacCheck
  | RuleAdd
  | RuleDel
  | RulesSet
  | PeerExpect
  | PeerConnect
  | PeerMacs
  | Certificate
  | KeysRevoked
  | PeerClose;

/** What a host sends the proxy. */
export type HostMessage = Traffic | Listening | PeerState | RulesApplied | MacStatus;

/** Every control message this version understands, either way. */
export type ControlMessage = ProxyMessage | HostMessage;

/** Every message type the proxy sends. */
export const PROXY_MESSAGE_TYPES: readonly ProxyMessage["type"][] = [
  "mac-moved",
  "mac-check",
  "rule-add",
  "rule-del",
  "rules-set",
  "peer-expect",
  "peer-connect",
  "peer-macs",
  "certificate",
  "keys-revoked",
  "peer-close",
];

/** Every message type a host sends. */
export const HOST_MESSAGE_TYPES: readonly HostMessage["type"][] = [
  "traffic",
  "listening",
  "peer-up",
  "peer-down",
  "rules-applied",
  "mac-status",
];

const FROM_PROXY: ReadonlySet<string> = new Set(PROXY_MESSAGE_TYPES);

/** Largest rule list a rules-set may carry. */
export const MAX_RULES_SET = 100_000;

const HOST_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const KEY_FINGERPRINT = /^SHA256:[A-Za-z0-9_-]{43}$/;

function text(o: Record<string, unknown>, key: string, max: number, re?: RegExp): string {
  const v = o[key];
  if (typeof v !== "string" || v.length === 0 || v.length > max || (re && !re.test(v))) {
    throw new ProtocolError(
      `Cannot accept control message ${String(o.type)}: bad or missing ${key}`,
    );
  }
  return v;
}

function int(o: Record<string, unknown>, key: string): number {
  const v = o[key];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    throw new ProtocolError(
      `Cannot accept control message ${String(o.type)}: bad or missing ${key}`,
    );
  }
  return v;
}

/** Entries a traffic report may carry (pairs + group sources). */
export const MAX_REPORT_ENTRIES = 200_000;

function count(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
    throw new ProtocolError(`Cannot accept traffic report: ${what} is not a non-negative number`);
  }
  return v;
}

function parseTraffic(o: Record<string, unknown>): Traffic {
  const pairs = o.pairs;
  const group = o.group;
  if (!Array.isArray(pairs) || !Array.isArray(group)) {
    throw new ProtocolError("Cannot accept traffic report: pairs and group must be lists");
  }
  if (pairs.length + group.length > MAX_REPORT_ENTRIES) {
    throw new ProtocolError(
      `Cannot accept traffic report: ${
        pairs.length + group.length
      } entries exceed ${MAX_REPORT_ENTRIES}`,
    );
  }
  const mac = (v: unknown) => {
    const m = macOrAny(v, "a MAC");
    if (m === null) throw new ProtocolError("Cannot accept traffic report: a MAC is missing");
    return m;
  };
  return {
    type: "traffic",
    intervalMs: count(o.intervalMs, "intervalMs"),
    pairs: pairs.map((p) => {
      if (!Array.isArray(p) || p.length !== 4) {
        throw new ProtocolError(
          "Cannot accept traffic report: a pair is not [src, dst, bytes, frames]",
        );
      }
      return [mac(p[0]), mac(p[1]), count(p[2], "bytes"), count(p[3], "frames")];
    }),
    group: group.map((g) => {
      if (!Array.isArray(g) || g.length !== 3) {
        throw new ProtocolError(
          "Cannot accept traffic report: a group entry is not [src, bytes, frames]",
        );
      }
      return [mac(g[0]), count(g[1], "bytes"), count(g[2], "frames")];
    }),
    overflowFrames: count(o.overflowFrames ?? 0, "overflowFrames"),
  };
}

const TARGET = /^(device|proxy|drop|(host|peer):[a-z0-9-]{1,63})$/;

function macOrAny(v: unknown, field: string): string | null {
  if (v === null || v === "*" || v === undefined) return null;
  if (typeof v !== "string") {
    throw new ProtocolError(`Cannot accept control message: ${field} is not a MAC`);
  }
  try {
    return formatMac(parseMac(v));
  } catch (e) {
    throw new ProtocolError(`Cannot accept control message: ${(e as Error).message}`);
  }
}

/**
 * Validates a rule from a peer or an API client.
 *
 * @throws {ProtocolError} naming the bad field.
 * @example
 * ```ts
 * import { parseWireRule } from "./messages.ts";
 * const r = parseWireRule({ src: "*", dst: "02:00:00:00:00:02", target: "peer:h2" });
 * if (r.src !== null || r.target !== "peer:h2") throw new Error();
 * ```
 */
export function parseWireRule(v: unknown): WireRule {
  if (typeof v !== "object" || v === null) {
    throw new ProtocolError("Cannot accept rule: not an object");
  }
  const o = v as Record<string, unknown>;
  if (typeof o.target !== "string" || !TARGET.test(o.target)) {
    throw new ProtocolError(
      "Cannot accept rule: target must be device, proxy, drop, host:NAME or peer:NAME",
    );
  }
  const text = (x: unknown, max: number) => (typeof x === "string" ? x.slice(0, max) : undefined);
  return {
    src: macOrAny(o.src, "src"),
    dst: macOrAny(o.dst, "dst"),
    target: o.target,
    owner: text(o.owner, 32),
    reason: text(o.reason, 300),
  };
}

/**
 * Validates a CONTROL message a host sent (already JSON-parsed): the proxy's parser. A message
 * only the proxy sends is refused like a malformed one.
 *
 * @throws {ProtocolError} for an unknown type, the wrong direction or a malformed field.
 * @example
 * ```ts
 * import { parseHostMessage } from "./messages.ts";
 * const m = parseHostMessage({ type: "listening", address: ":7810" });
 * if (m.type !== "listening") throw new Error();
 * try {
 *   parseHostMessage({ type: "rule-add", rule: { src: null, dst: null, target: "drop" } });
 *   throw new Error("accepted a proxy's message from a host");
 * } catch (e) {
 *   if (!(e as Error).message.includes("only the proxy sends it")) throw e;
 * }
 * ```
 */
export function parseHostMessage(v: unknown): HostMessage {
  const type = typeOf(v);
  if (FROM_PROXY.has(type)) {
    throw new ProtocolError(`Cannot accept ${type} from a host: only the proxy sends it`);
  }
  return parseAny(v) as HostMessage;
}

/**
 * Validates a CONTROL message the proxy sent (already JSON-parsed): the host's parser.
 *
 * @throws {ProtocolError} for an unknown type, the wrong direction or a malformed field.
 */
export function parseProxyMessage(v: unknown): ProxyMessage {
  const type = typeOf(v);
  if (!FROM_PROXY.has(type) && KNOWN.has(type)) {
    throw new ProtocolError(`Cannot act on ${type} from the proxy: only hosts send it`);
  }
  return parseAny(v) as ProxyMessage;
}

const KNOWN: ReadonlySet<string> = new Set([...PROXY_MESSAGE_TYPES, ...HOST_MESSAGE_TYPES]);

function typeOf(v: unknown): string {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new ProtocolError("Cannot accept control message: not a JSON object");
  }
  return String((v as Record<string, unknown>).type);
}

/** Validates a message of either direction. */
function parseAny(v: unknown): ControlMessage {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new ProtocolError("Cannot accept control message: not a JSON object");
  }
  const o = v as Record<string, unknown>;
  switch (o.type) {
    case "rule-add":
      return { type: "rule-add", rule: parseWireRule(o.rule) };
    case "rule-del":
      return { type: "rule-del", src: macOrAny(o.src, "src"), dst: macOrAny(o.dst, "dst") };
    case "traffic":
      return parseTraffic(o);
    case "rules-set": {
      if (!Array.isArray(o.rules) || o.rules.length > MAX_RULES_SET) {
        throw new ProtocolError("Cannot accept rules-set: rules must be a list of bounded length");
      }
      return {
        type: "rules-set",
        owner: text(o, "owner", 32),
        seq: int(o, "seq"),
        rules: o.rules.map(parseWireRule),
      };
    }
    case "peer-expect":
      return {
        type: "peer-expect",
        peer: text(o, "peer", 63, HOST_NAME),
        key: text(o, "key", 64, KEY_FINGERPRINT),
        ticket: text(o, "ticket", 128),
        ttlMs: int(o, "ttlMs"),
      };
    case "peer-connect":
      return {
        type: "peer-connect",
        peer: text(o, "peer", 63, HOST_NAME),
        key: text(o, "key", 64, KEY_FINGERPRINT),
        address: text(o, "address", 100),
        ticket: text(o, "ticket", 128),
      };
    case "certificate":
      return { type: "certificate", certificate: text(o, "certificate", 16 * 1024) };
    case "keys-revoked": {
      if (!Array.isArray(o.keys) || o.keys.length > MAX_REVOKED_KEYS) {
        throw new ProtocolError(
          "Cannot accept keys-revoked: keys must be a list of bounded length",
        );
      }
      return {
        type: "keys-revoked",
        keys: o.keys.map((_, i) =>
          text(o.keys as Record<string, unknown>, String(i), 64, KEY_FINGERPRINT)
        ),
      };
    }
    case "peer-macs": {
      if (o.change !== "set" && o.change !== "add" && o.change !== "remove") {
        throw new ProtocolError("Cannot accept peer-macs: change must be set, add or remove");
      }
      if (!Array.isArray(o.macs) || o.macs.length > MAX_PEER_MACS) {
        throw new ProtocolError("Cannot accept peer-macs: macs must be a list of bounded length");
      }
      return {
        type: "peer-macs",
        peer: text(o, "peer", 63, HOST_NAME),
        change: o.change,
        macs: o.macs.map((m) => {
          const mac = macOrAny(m, "macs");
          if (mac === null) throw new ProtocolError("Cannot accept peer-macs: a MAC is missing");
          return mac;
        }),
      };
    }
    case "mac-check":
    case "mac-status": {
      const mac = macOrAny(o.mac, "mac");
      if (mac === null) throw new ProtocolError(`Cannot accept ${o.type}: mac is missing`);
      if (o.type === "mac-check") return { type: "mac-check", mac };
      if (typeof o.present !== "boolean") {
        throw new ProtocolError("Cannot accept mac-status: present must be true or false");
      }
      return { type: "mac-status", mac, present: o.present };
    }
    case "mac-moved": {
      const mac = macOrAny(o.mac, "mac");
      if (mac === null) throw new ProtocolError("Cannot accept mac-moved: mac is missing");
      return { type: "mac-moved", mac, to: text(o, "to", 80) };
    }
    case "peer-close":
      return {
        type: "peer-close",
        peer: text(o, "peer", 63, HOST_NAME),
        reason: String(o.reason ?? "").slice(0, 200),
      };
    case "listening":
      return { type: "listening", address: text(o, "address", 100) };
    case "peer-up":
    case "peer-down":
      return {
        type: o.type,
        peer: text(o, "peer", 63, HOST_NAME),
        reason: String(o.reason ?? "").slice(0, 200),
      };
    case "rules-applied":
      return { type: "rules-applied", owner: text(o, "owner", 32), seq: int(o, "seq") };
    default:
      throw new ProtocolError(
        `Cannot accept control message: unknown type ${
          JSON.stringify(String(o.type).slice(0, 40))
        }`,
      );
  }
}

/** A wire MAC (or null) as the switch's number (or null). */
export function macOfWire(v: string | null): Mac | null {
  return v === null ? null : parseMac(v);
}
