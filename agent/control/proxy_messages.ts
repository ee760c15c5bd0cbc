/**
 * What the proxy sends a host, and the host's parser for it: one type per message, one
 * validator per type. The table {@linkcode PROXY_PARSERS} is keyed by every type of
 * {@linkcode ProxyMessage}, so a message added to the union without a parser does not compile.
 *
 * @module
 */

import { ProtocolError } from "../link/wire.ts";
import {
  type Fields,
  HOST_NAME,
  int,
  KEY_FINGERPRINT,
  macOrAny,
  note,
  requiredMac,
  text,
} from "./parse_fields.ts";
import { parseWireRule, type WireRule } from "./wire_rule.ts";

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
 * Proxy -> both hosts of a pair, at once: punch a hole (TCP simultaneous open) by connecting
 * from `localPort` to `peer`'s outside `address`, then run TLS as `role` says and the
 * fast-path handshake with `ticket` (the tls-client presents it, the tls-server expects it).
 */
export interface PeerPunch {
  type: "peer-punch";
  peer: string;
  /** The peer's key fingerprint: the tls-client verifies the peer's certificate by it. */
  key: string;
  /** The peer's outside address (where its star link comes from), `ip:port`. */
  address: string;
  localPort: number;
  role: "tls-server" | "tls-client";
  ticket: string;
  /** Give up after this long. */
  ttlMs: number;
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

/** Largest rule list a rules-set may carry. */
export const MAX_RULES_SET = 100_000;

/** Proxy -> host: close the fast-path link to `peer`. */
export interface PeerClose {
  type: "peer-close";
  peer: string;
  reason: string;
}

/**
 * Proxy -> host: time one round trip to `peer`'s fast-path listener at `address` (one the
 * proxy reached itself), verifying its certificate by `key`, and answer probe-result. Sent only
 * for host pairs with no traffic-timed RTT of their own, a few per interval
 * (proxy/underlay_probes.ts).
 */
export interface ProbePeer {
  type: "probe-peer";
  peer: string;
  /** `address`'s host must present a certificate for this key's TLS name. */
  key: string;
  address: string;
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

/** What the proxy sends a host. */
export type ProxyMessage =
  | MacMoved
  | MacCheck
  | RuleAdd
  | RuleDel
  | RulesSet
  | PeerExpect
  | PeerConnect
  | PeerPunch
  | PeerMacs
  | Certificate
  | KeysRevoked
  | PeerClose
  | ProbePeer;

/** Every message type the proxy sends. */
export const PROXY_MESSAGE_TYPES: readonly ProxyMessage["type"][] = [
  "mac-moved",
  "mac-check",
  "rule-add",
  "rule-del",
  "rules-set",
  "peer-expect",
  "peer-connect",
  "peer-punch",
  "peer-macs",
  "certificate",
  "keys-revoked",
  "peer-close",
  "probe-peer",
];

function parseRulesSet(o: Fields): RulesSet {
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

function parseKeysRevoked(o: Fields): KeysRevoked {
  if (!Array.isArray(o.keys) || o.keys.length > MAX_REVOKED_KEYS) {
    throw new ProtocolError("Cannot accept keys-revoked: keys must be a list of bounded length");
  }
  return {
    type: "keys-revoked",
    keys: o.keys.map((_, i) => text(o.keys as Fields, String(i), 64, KEY_FINGERPRINT)),
  };
}

function parsePeerMacs(o: Fields): PeerMacs {
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
    macs: o.macs.map((m) => requiredMac(m, "macs", "Cannot accept peer-macs: a MAC is missing")),
  };
}

function parsePeerPunch(o: Fields): PeerPunch {
  if (o.role !== "tls-server" && o.role !== "tls-client") {
    throw new ProtocolError("Cannot accept peer-punch: role must be tls-server or tls-client");
  }
  const localPort = int(o, "localPort");
  if (localPort < 1 || localPort > 65535) {
    throw new ProtocolError("Cannot accept peer-punch: localPort must be a port (1-65535)");
  }
  return {
    type: "peer-punch",
    peer: text(o, "peer", 63, HOST_NAME),
    key: text(o, "key", 64, KEY_FINGERPRINT),
    address: text(o, "address", 100),
    localPort,
    role: o.role,
    ticket: text(o, "ticket", 128),
    ttlMs: int(o, "ttlMs"),
  };
}

/** One validator per message type the proxy sends. */
const PROXY_PARSERS: { [T in ProxyMessage["type"]]: (o: Fields) => ProxyMessage & { type: T } } = {
  "rule-add": (o) => ({ type: "rule-add", rule: parseWireRule(o.rule) }),
  "rule-del": (o) => ({
    type: "rule-del",
    src: macOrAny(o.src, "src"),
    dst: macOrAny(o.dst, "dst"),
  }),
  "rules-set": parseRulesSet,
  "peer-expect": (o) => ({
    type: "peer-expect",
    peer: text(o, "peer", 63, HOST_NAME),
    key: text(o, "key", 64, KEY_FINGERPRINT),
    ticket: text(o, "ticket", 128),
    ttlMs: int(o, "ttlMs"),
  }),
  "peer-connect": (o) => ({
    type: "peer-connect",
    peer: text(o, "peer", 63, HOST_NAME),
    key: text(o, "key", 64, KEY_FINGERPRINT),
    address: text(o, "address", 100),
    ticket: text(o, "ticket", 128),
  }),
  "peer-punch": parsePeerPunch,
  "certificate": (o) => ({ type: "certificate", certificate: text(o, "certificate", 16 * 1024) }),
  "keys-revoked": parseKeysRevoked,
  "peer-macs": parsePeerMacs,
  "mac-check": (o) => ({
    type: "mac-check",
    mac: requiredMac(o.mac, "mac", "Cannot accept mac-check: mac is missing"),
  }),
  "mac-moved": (o) => ({
    type: "mac-moved",
    mac: requiredMac(o.mac, "mac", "Cannot accept mac-moved: mac is missing"),
    to: text(o, "to", 80),
  }),
  "peer-close": (o) => ({
    type: "peer-close",
    peer: text(o, "peer", 63, HOST_NAME),
    reason: note(o.reason, 200),
  }),
  "probe-peer": (o) => ({
    type: "probe-peer",
    peer: text(o, "peer", 63, HOST_NAME),
    key: text(o, "key", 64, KEY_FINGERPRINT),
    address: text(o, "address", 100),
  }),
};

/**
 * Validates the fields of a message of a type the proxy sends; undefined for any other type
 * (the face, messages.ts, turns that into a wrong-direction or unknown-type refusal).
 *
 * @throws {ProtocolError} for a malformed field.
 */
export function parseFromProxy(o: Fields): ProxyMessage | undefined {
  const type = o.type;
  if (typeof type !== "string" || !Object.hasOwn(PROXY_PARSERS, type)) return undefined;
  return PROXY_PARSERS[type as ProxyMessage["type"]](o);
}
