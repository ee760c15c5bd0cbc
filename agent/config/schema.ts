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
  duration,
  int,
  listenAddress,
  oneOf,
  optional,
  real,
  text,
} from "./types.ts";

import { setting } from "./setting.ts";
import { DATA_PLANE_SETTINGS } from "./settings_data_plane.ts";
import { ADAPTATION_SETTINGS } from "./settings_adaptation.ts";

export type { Setting } from "./setting.ts";

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
  ...DATA_PLANE_SETTINGS,
  maxVms: setting({
    kind: int(2, 1_000_000),
    default: 65_536,
    group: "vttif",
    meta: "N",
    doc:
      "Proxy: VMs the traffic matrix tracks; idle ones are evicted, new ones beyond are not counted.",
  }),
  ...ADAPTATION_SETTINGS,
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
