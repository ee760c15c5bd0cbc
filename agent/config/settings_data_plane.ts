/**
 * The data-plane settings: the device, queues, the MAC table and its anti-spoofing timers,
 * keepalives, handshakes and their limits, reconnects. Part of the one settings table
 * (schema.ts), in a file of its own because it is the largest section.
 *
 * @module
 */

import { bool, duration, int, oneOf } from "./types.ts";
import { setting } from "./setting.ts";

/** The "data plane" section of {@linkcode SETTINGS}. */
export const DATA_PLANE_SETTINGS = {
  offload: setting({
    kind: bool,
    default: true,
    group: "data plane",
    doc: "Let the TAP give and take TCP superframes (TSO/checksum offload, up to 64 KB).",
  }),
  deviceWait: setting({
    kind: oneOf("event-loop", "thread"),
    default: "event-loop",
    group: "data plane",
    meta: "HOW",
    doc: "How an idle device is waited for: event-loop (the frame wakes the agent's own " +
      "thread; lowest latency) or thread (a poll on a worker thread; portable fallback).",
  }),
  queueBytes: setting({
    kind: int(70_000, 1 << 30),
    // 2 MiB is 3.4 ms at 5 Gbit/s: deep enough for full speed, and it bounds the delay a
    // busy link adds. 4 MiB measured no faster and cost 10 MiB more RSS per busy link.
    default: 2 * 1024 * 1024,
    group: "data plane",
    meta: "BYTES",
    doc: "Bound of each link's send queue; frames beyond it are dropped and counted.",
  }),
  maxMacs: setting({
    kind: int(1, 10_000_000),
    default: 65_536,
    group: "data plane",
    meta: "N",
    doc: "Bound of the MAC table.",
  }),
  maxMacsPerHost: setting({
    kind: int(1, 10_000_000),
    default: 4096,
    group: "data plane",
    meta: "N",
    doc: "Proxy: most VM MACs one host may hold; frames from further new sources are dropped " +
      "and counted (portFull).",
  }),
  neighbourSuppression: setting({
    kind: bool,
    default: true,
    group: "data plane",
    doc: "Proxy: answer ARP and IPv6 neighbour solicitations for addresses it has seen their " +
      "owner claim, instead of flooding them to every host (false: flood, as a plain switch).",
  }),
  macAge: setting({
    kind: duration(1_000, 86_400_000),
    default: 300_000,
    group: "data plane",
    meta: "DURATION",
    doc: "A MAC address not seen for this long is forgotten.",
  }),
  moveQuiet: setting({
    kind: duration(0, 60_000),
    default: 250,
    group: "data plane",
    meta: "DURATION",
    doc: "Host without a bridge (pcap): when another host claims one of its VMs, it says the VM " +
      "is gone after this much silence (with a bridge, its forwarding database decides).",
  }),
  keepalive: setting({
    kind: duration(100, 600_000),
    default: 1_000,
    group: "data plane",
    meta: "DURATION",
    doc: "Interval of keepalive pings on idle links.",
  }),
  deadAfter: setting({
    kind: duration(300, 3_600_000),
    default: 3_000,
    group: "data plane",
    meta: "DURATION",
    doc: "A link that received nothing for this long is closed (half-open TCP detection).",
  }),
  keepaliveIdle: setting({
    kind: duration(100, 3_600_000),
    default: 10_000,
    group: "data plane",
    meta: "DURATION",
    doc: "A star link that carried nothing but keepalives for this long pings at this interval " +
      "instead, and is closed after this plus dead-after of silence (idle hosts cost the proxy " +
      "little); set it equal to keepalive for no idle mode.",
  }),
  handshakeTimeout: setting({
    kind: duration(100, 600_000),
    default: 5_000,
    group: "data plane",
    meta: "DURATION",
    doc: "A peer that has not finished its handshake by then is disconnected.",
  }),
  joinTimeout: setting({
    kind: duration(100, 600_000),
    default: 30_000,
    group: "data plane",
    meta: "DURATION",
    doc: "Host: how long a connection to the proxy may take (CA discovery, join), waiting in " +
      "the proxy's queue included. Proxy: how long a host may wait there for a handshake slot " +
      "(this less handshake-timeout): a join storm is served in order, not by retries.",
  }),
  dialTimeout: setting({
    kind: duration(100, 600_000),
    default: 3_000,
    group: "data plane",
    meta: "DURATION",
    doc: "Host: a fast-path dial that has not connected by then fails (a dropped SYN would " +
      "wait about 127 s), and the other direction is tried.",
  }),
  maxHandshakes: setting({
    kind: int(1, 100_000),
    default: 64,
    group: "data plane",
    meta: "N",
    doc: "Proxy, and hosts' fast-path listener: handshakes in flight at once; when full, the " +
      "source holding the most makes room, else the connection is closed; all counted.",
  }),
  maxHandshakesPerSource: setting({
    kind: int(1, 100_000),
    default: 8,
    group: "data plane",
    meta: "N",
    doc: "Proxy, and hosts' fast-path listener: handshakes in flight from one source address.",
  }),
  reconnectMax: setting({
    kind: duration(100, 3_600_000),
    default: 10_000,
    group: "data plane",
    meta: "DURATION",
    doc: "Upper bound of the host's reconnect backoff (exponential, with jitter).",
  }),
};
