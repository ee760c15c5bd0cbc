/**
 * What a host sends the proxy, and the proxy's parser for it: one type per message, one
 * validator per type. The table {@linkcode HOST_PARSERS} is keyed by every type of
 * {@linkcode HostMessage}, so a message added to the union without a parser does not compile.
 * The traffic report, the largest message a host sends, is bounded here before it is read.
 *
 * @module
 */

import { ProtocolError } from "../link/wire.ts";
import type { TrafficReport } from "../traffic/counter.ts";
import { type Fields, HOST_NAME, int, note, requiredMac, text } from "./parse_fields.ts";

/** Host -> proxy: traffic counted since the previous report (see agent/traffic/counter.ts). */
export type Traffic = TrafficReport;

/** Host -> proxy: where this host accepts fast-path links (`:PORT` = the address it joined from). */
export interface Listening {
  type: "listening";
  address: string;
  /**
   * A public address that reaches the listener (a port forward, `--advertise`): handed to
   * peers only once the proxy has reached the host there itself.
   */
  advertise?: string;
}

/** Host -> proxy: a fast-path link to `peer` came up or went down. */
export interface PeerState {
  type: "peer-up" | "peer-down";
  peer: string;
  reason?: string;
  /** peer-up: how this end got the link (it dialed, it accepted, or a hole punch). */
  via?: PeerVia;
}

/** How one end of a fast path got it. */
export type PeerVia = "dialed" | "accepted" | "punched";

const PEER_VIA: readonly string[] = ["dialed", "accepted", "punched"] satisfies PeerVia[];

/** Host -> proxy: rules-set `seq` is in force. */
export interface RulesApplied {
  type: "rules-applied";
  owner: string;
  seq: number;
}

/** Host -> proxy: whether `mac` is still on this host's network (after a mac-check). */
export interface MacStatus {
  type: "mac-status";
  mac: string;
  present: boolean;
}

/**
 * Host -> proxy: the round trip its fast paths' keepalives measured, per peer; sent only when
 * one changed meaningfully or is due again (agent/traffic/path_rtt.ts), never per ping.
 */
export interface PathRtt {
  type: "path-rtt";
  /** [peer host, RTT ms]: the pair is always (this host, peer). */
  paths: [string, number][];
}

/**
 * Host -> proxy: the answer to probe-peer: the round trip to `peer` (HELLO -> WELCOME on its
 * fast-path listener, after TLS was up), or why there is none. Exactly one of the two.
 */
export type ProbeResult =
  | { type: "probe-result"; peer: string; rttMs: number }
  | { type: "probe-result"; peer: string; error: string };

/** What a host sends the proxy. */
export type HostMessage =
  | Traffic
  | Listening
  | PeerState
  | RulesApplied
  | MacStatus
  | PathRtt
  | ProbeResult;

/** Every message type a host sends. */
export const HOST_MESSAGE_TYPES: readonly HostMessage["type"][] = [
  "traffic",
  "listening",
  "peer-up",
  "peer-down",
  "rules-applied",
  "mac-status",
  "path-rtt",
  "probe-result",
];

/** Entries a traffic report may carry (pairs + group sources). */
export const MAX_REPORT_ENTRIES = 200_000;

/** Fast paths one path-rtt message may report (a host with more sends them over several). */
export const MAX_PATH_RTT_ENTRIES = 1024;

function count(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
    throw new ProtocolError(`Cannot accept traffic report: ${what} is not a non-negative number`);
  }
  return v;
}

function parseTraffic(o: Fields): Traffic {
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
  const mac = (v: unknown) =>
    requiredMac(v, "a MAC", "Cannot accept traffic report: a MAC is missing");
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

function parseMacStatus(o: Fields): MacStatus {
  const mac = requiredMac(o.mac, "mac", "Cannot accept mac-status: mac is missing");
  if (typeof o.present !== "boolean") {
    throw new ProtocolError("Cannot accept mac-status: present must be true or false");
  }
  return { type: "mac-status", mac, present: o.present };
}

/**
 * The shape of a path-rtt report: bounded, each entry a peer name and a number. Whether the
 * number is a plausible RTT and whether the pair has a fast path is the proxy's to judge and
 * count (proxy/underlay_service.ts): a bad value is refused alone, not the host.
 */
function parsePathRtt(o: Fields): PathRtt {
  const paths = o.paths;
  if (!Array.isArray(paths) || paths.length > MAX_PATH_RTT_ENTRIES) {
    throw new ProtocolError(
      `Cannot accept path-rtt: paths must be a list of at most ${MAX_PATH_RTT_ENTRIES} entries`,
    );
  }
  return {
    type: "path-rtt",
    paths: paths.map((p) => {
      const ok = Array.isArray(p) && p.length === 2 && typeof p[0] === "string" &&
        HOST_NAME.test(p[0]) && typeof p[1] === "number";
      if (!ok) throw new ProtocolError("Cannot accept path-rtt: an entry is not [peer, rttMs]");
      return [p[0], p[1]];
    }),
  };
}

/**
 * The shape of a probe-result: a peer and either a number or a reason. Whether the proxy asked
 * for it and whether the number is a plausible RTT is the proxy's to judge and count
 * (proxy/underlay_probes.ts), as for path-rtt.
 */
function parseProbeResult(o: Fields): ProbeResult {
  const peer = text(o, "peer", 63, HOST_NAME);
  const hasRtt = o.rttMs !== undefined;
  if (hasRtt === (o.error !== undefined)) {
    throw new ProtocolError("Cannot accept probe-result: give exactly one of rttMs and error");
  }
  if (!hasRtt) return { type: "probe-result", peer, error: text(o, "error", 200) };
  if (typeof o.rttMs !== "number") {
    throw new ProtocolError("Cannot accept probe-result: rttMs is not a number");
  }
  return { type: "probe-result", peer, rttMs: o.rttMs };
}

/** The parser of peer-up or peer-down. */
function peerState<T extends PeerState["type"]>(type: T) {
  return (o: Fields) => ({
    type,
    peer: text(o, "peer", 63, HOST_NAME),
    reason: note(o.reason, 200),
    ...(typeof o.via === "string" && PEER_VIA.includes(o.via) ? { via: o.via as PeerVia } : {}),
  });
}

/** One validator per message type a host sends. */
const HOST_PARSERS: { [T in HostMessage["type"]]: (o: Fields) => HostMessage & { type: T } } = {
  "traffic": parseTraffic,
  "listening": (o) => ({
    type: "listening",
    address: text(o, "address", 100),
    ...(o.advertise === undefined ? {} : { advertise: text(o, "advertise", 100) }),
  }),
  "peer-up": peerState("peer-up"),
  "peer-down": peerState("peer-down"),
  "rules-applied": (o) => ({
    type: "rules-applied",
    owner: text(o, "owner", 32),
    seq: int(o, "seq"),
  }),
  "mac-status": parseMacStatus,
  "path-rtt": parsePathRtt,
  "probe-result": parseProbeResult,
};

/**
 * Validates the fields of a message of a type a host sends; undefined for any other type
 * (the face, messages.ts, turns that into a wrong-direction or unknown-type refusal).
 *
 * @throws {ProtocolError} for a malformed field.
 */
export function parseFromHost(o: Fields): HostMessage | undefined {
  const type = o.type;
  if (typeof type !== "string" || !Object.hasOwn(HOST_PARSERS, type)) return undefined;
  return HOST_PARSERS[type as HostMessage["type"]](o);
}
