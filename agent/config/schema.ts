/**
 * Every setting of the agent, in one place: its kind, default and help text. The YAML key
 * and the command-line flag have the same name (`state-dir:` in a file, `--state-dir` on
 * the command line); flags win over the file. {@linkcode Config} is derived from this table,
 * so a setting cannot exist in one place and be missing in another.
 *
 * @module
 */

import {
  type Address,
  address,
  bool,
  budget,
  duration,
  hostPairs,
  int,
  type Kind,
  listenAddress,
  oneOf,
  optional,
  real,
  text,
} from "./types.ts";

/** One setting's description. */
export interface Setting<T> {
  kind: Kind<T>;
  default: T;
  /** One-line help; the first word group says what it is, then why one would change it. */
  doc: string;
  /** Help section. */
  group:
    | "mode"
    | "attach"
    | "trust"
    | "data plane"
    | "vttif"
    | "adaptation"
    | "operator"
    | "logging";
  /** Placeholder for the value in `--help`, e.g. `ADDR:PORT`. */
  meta?: string;
}

function setting<T>(s: Omit<Setting<T>, "default"> & { default: NoInfer<T> }): Setting<T> {
  return s;
}

const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;
const HOSTNAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** The settings table. Keys are camelCase here and kebab-case in YAML and on the command line. */
export const SETTINGS = {
  proxy: setting({
    kind: bool,
    default: false,
    group: "mode",
    doc: "Run as the proxy on the user's LAN: accept hosts, keep the star, infer and adapt.",
  }),
  join: setting({
    kind: optional(address),
    default: null as Address | null,
    group: "mode",
    meta: "HOST:PORT",
    doc: "Run as a host and join the proxy at HOST:PORT.",
  }),
  listen: setting({
    kind: optional(listenAddress),
    default: null as Address | null,
    group: "mode",
    meta: "ADDR:PORT",
    doc: "Where to accept links. Proxy: hosts join here (default :7800). Host: fast-path " +
      "links from other hosts (default: any free port, advertised to the proxy).",
  }),
  advertise: setting({
    kind: optional(address),
    default: null as Address | null,
    group: "mode",
    meta: "ADDR:PORT",
    doc: "Host: a public address that reaches its fast-path listener (a port forward on a " +
      "NAT); peers are sent there only after the proxy has reached this host there itself.",
  }),
  name: setting({
    kind: optional(text("a host name of a-z, 0-9 and '-' (at most 63)", HOSTNAME)),
    default: null as string | null,
    group: "mode",
    meta: "NAME",
    doc: "This host's name in the overlay (default: the machine's host name, lower-cased).",
  }),
  stateDir: setting({
    kind: text("a directory path"),
    default: "/var/lib/vnet",
    group: "trust",
    meta: "DIR",
    doc: "Proxy: the CA, its certificate, the join token and the host book (hosts.json). " +
      "Host: its key and rejoin credential (host.json). Created 0700.",
  }),
  token: setting({
    kind: optional(text("a join token vnet1.<id>.<secret>.<ca-hash>")),
    default: null as string | null,
    group: "trust",
    meta: "TOKEN",
    doc: "Host: the join token printed by the proxy. Prefer --token-file: argv is visible to all.",
  }),
  tokenFile: setting({
    kind: optional(text("a file path")),
    default: null as string | null,
    group: "trust",
    meta: "FILE",
    doc: "Host: read the join token from FILE (e.g. a copy of the proxy's join.token).",
  }),
  tokenTtl: setting({
    kind: duration(0, 10 * 365 * 86_400_000),
    default: 0,
    group: "trust",
    meta: "DURATION",
    doc: "Proxy: the join token admits new hosts for this long after it was made (0: for ever); " +
      "hosts that joined keep their own rejoin credential (state-dir/hosts.json).",
  }),
  certLifetime: setting({
    kind: duration(60_000, 10 * 365 * 86_400_000),
    default: 30 * 86_400_000,
    group: "trust",
    meta: "DURATION",
    doc: "Proxy: how long a host's certificate is valid; it is renewed over the host's link " +
      "while it runs, when less than a third is left.",
  }),
  tap: setting({
    kind: optional(text("an interface name of at most 15 characters", IFNAME)),
    default: null as string | null,
    group: "attach",
    meta: "NAME",
    doc: "Attach through a TAP device of this name, created by the agent.",
  }),
  bridge: setting({
    kind: optional(text("an interface name of at most 15 characters", IFNAME)),
    default: null as string | null,
    group: "attach",
    meta: "BR",
    doc: "Enslave the TAP device to this existing Linux bridge (where the VMs are).",
  }),
  pcap: setting({
    kind: optional(text("an interface name of at most 15 characters", IFNAME)),
    default: null as string | null,
    group: "attach",
    meta: "IFACE",
    doc: "Attach to an existing interface instead, captured in promiscuous mode with libpcap.",
  }),
  mtu: setting({
    kind: int(576, 65_000),
    default: 1500,
    group: "attach",
    meta: "BYTES",
    doc: "MTU of the attached network; jumbo frames (9000) work when every side allows them.",
  }),
  mac: setting({
    kind: optional(
      text("a MAC address such as 02:00:00:00:00:01", /^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/),
    ),
    default: null as string | null,
    group: "attach",
    meta: "MAC",
    doc: "MAC address of the TAP device (default: chosen by the kernel).",
  }),
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
  maxVms: setting({
    kind: int(2, 1_000_000),
    default: 65_536,
    group: "vttif",
    meta: "N",
    doc:
      "Proxy: VMs the traffic matrix tracks; idle ones are evicted, new ones beyond are not counted.",
  }),
  reconnectMax: setting({
    kind: duration(100, 3_600_000),
    default: 10_000,
    group: "data plane",
    meta: "DURATION",
    doc: "Upper bound of the host's reconnect backoff (exponential, with jitter).",
  }),
  adapt: setting({
    kind: bool,
    default: true,
    group: "adaptation",
    doc: "Proxy: add fast-path links between hosts whose VMs talk heavily (false: star only).",
  }),
  fastPaths: setting({
    kind: budget(100_000),
    default: null as number | null,
    group: "adaptation",
    meta: "N|auto",
    doc: "Proxy: budget k of fast-path links; auto = as many as the topology needs.",
  }),
  pin: setting({
    kind: hostPairs,
    default: [] as [string, string][],
    group: "adaptation",
    meta: "A:B,...",
    doc: "Proxy: host pairs that always get a fast path (outside the budget).",
  }),
  forbid: setting({
    kind: hostPairs,
    default: [] as [string, string][],
    group: "adaptation",
    meta: "A:B,...",
    doc: "Proxy: host pairs that never get a fast path (wins over pin).",
  }),
  vmSlots: setting({
    kind: optional(int(0, 100_000)),
    default: null as number | null,
    group: "adaptation",
    meta: "N",
    doc: "Host: how many VMs this host can hold, told to the proxy for VM placement; a VM " +
      "is a MAC seen in unicast traffic (default: no room beyond the VMs it has).",
  }),
  migrateHook: setting({
    kind: optional(text("a command (split at spaces; no shell)", /^\S.*$/)),
    default: null as string | null,
    group: "adaptation",
    meta: "CMD",
    doc: "Proxy: migrates a VM when placement asks: run as CMD VM-MAC FROM-HOST TO-HOST " +
      "(e.g. a script calling virsh migrate); exit 0 when the VM runs on TO-HOST.",
  }),
  migrate: setting({
    kind: bool,
    default: false,
    group: "adaptation",
    doc: "Proxy: carry out VM placement plans through --migrate-hook, one move at a time " +
      "(false: advise only, see `agent advise`).",
  }),
  maxMoves: setting({
    kind: int(0, 10_000),
    default: 4,
    group: "adaptation",
    meta: "N",
    doc: "Proxy: at most this many VM migrations per placement plan (0: placement off).",
  }),
  minGain: setting({
    kind: real(0, 1),
    default: 0.1,
    group: "adaptation",
    meta: "FRACTION",
    doc: "Proxy: a placement plan is proposed only if it cuts the predicted cost by this " +
      "fraction, net of the moves' cost.",
  }),
  migrateSettle: setting({
    kind: duration(0, 3_600_000),
    default: 15_000,
    group: "adaptation",
    meta: "DURATION",
    doc: "Proxy: after a VM arrived on its new host, wait this long before measuring the " +
      "move's gain (VTTIF's smoothing must see the new traffic).",
  }),
  api: setting({
    kind: optional(listenAddress),
    default: null as Address | null,
    group: "operator",
    meta: "ADDR:PORT",
    doc: "Proxy: serve the control API and live page here (default 127.0.0.1:7801). " +
      "Host: serve its own status (/api/status, /metrics) here; off by default.",
  }),
  updateInterval: setting({
    kind: duration(100, 3_600_000),
    default: 1_000,
    group: "vttif",
    meta: "DURATION",
    doc: "How often hosts send their traffic counts to the proxy.",
  }),
  smoothing: setting({
    kind: duration(100, 86_400_000),
    default: 5_000,
    group: "vttif",
    meta: "DURATION",
    doc: "Time constant of the low-pass filter over the traffic matrix.",
  }),
  threshold: setting({
    kind: real(0, 1),
    default: 0.1,
    group: "vttif",
    meta: "FRACTION",
    doc: "Edges below this fraction of the heaviest one are pruned from the topology.",
  }),
  hysteresis: setting({
    kind: duration(0, 3_600_000),
    default: 3_000,
    group: "vttif",
    meta: "DURATION",
    doc: "A new topology must persist this long before a change event is emitted.",
  }),
  logLevel: setting({
    kind: oneOf("trace", "debug", "info", "warning", "error", "fatal"),
    default: "info",
    group: "logging",
    meta: "LEVEL",
    doc: "Least severe level logged.",
  }),
  logFormat: setting({
    kind: oneOf("text", "json"),
    default: "text",
    group: "logging",
    meta: "FORMAT",
    doc: "text for people, json (one object per line) for machines.",
  }),
};

/** Name of a setting. */
export type SettingName = keyof typeof SETTINGS;

/** The typed, validated configuration. */
export type Config = { [K in SettingName]: ReturnType<(typeof SETTINGS)[K]["kind"]["parse"]> };

/** camelCase -> kebab-case: the YAML key and flag of a setting. */
export function keyOf(name: SettingName): string {
  return name.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
}
