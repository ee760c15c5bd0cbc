/**
 * Canned answers of the proxy's control API, one per endpoint the CLI calls, for CLI tests
 * that need a proxy's words but not a proxy. Typed with the shared reply types, so a change to
 * a reply's shape shows here first.
 *
 * @module
 */

import type {
  AdaptReply,
  HostsReply,
  LinksReply,
  LoginReply,
  PathsReply,
  RevokeReply,
  RulesReply,
  StatusReply,
  TopologyReply,
  VmsReply,
} from "../../../proxy/api_types.ts";
import type { VnetEvent } from "../../../proxy/event_types.ts";

const T0 = Date.UTC(2024, 0, 2, 3, 4, 5, 678);
const LINK = {
  frames: 10,
  frameBytes: 1000,
  frameDrops: 1,
  controlDrops: 0,
  batches: 4,
  rxFrames: 20,
  rxBytes: 2000,
  upSince: T0,
};

/** `GET /api/status`. */
export const STATUS: StatusReply = {
  role: "proxy",
  version: "0.1.0",
  memory: { rss: 1, heapTotal: 2, heapUsed: 3, external: 4 },
  uptimeMs: 12_345,
  hosts: [
    { name: "h1", port: "host:h1", ...LINK, rttMs: 1.234 },
    { name: "h2", port: "host:h2", ...LINK, rxFrames: 7, rttMs: null },
  ],
  ports: { "host:h1": { rxFrames: 1, rxBytes: 2, txFrames: 3, txBytes: 4, txDrops: 0 } },
  macs: 3,
  rules: 1,
  drops: {
    malformed: 0,
    badSource: 0,
    loop: 2,
    spoofed: 0,
    claimPending: 0,
    tableFull: 0,
    noRoute: 0,
    hairpin: 1,
    groupOnFastPath: 0,
    rule: 0,
  } as StatusReply["drops"],
  reportRefusals: {
    "report too soon": 0,
    "source not the reporter's": 0,
    "unknown destination": 0,
    clamped: 0,
  },
};

const CHANGE = {
  type: "topology-change" as const,
  from: "none",
  to: "bus",
  fromSummary: "no traffic",
  toSummary: "bus: 3 VMs",
  added: ["a-b", "b-c"],
  removed: [],
  firstSeenAt: T0,
  detectedAt: T0 + 1500,
};

/** `GET /api/topology`. */
export const TOPOLOGY: TopologyReply = {
  updatedAt: T0,
  ticks: 9,
  classification: {
    kind: "bus",
    summary: "bus: 3 VMs",
    evidence: { vms: 3, edges: 2, components: 1, degrees: { 1: 2, 2: 1 } },
  },
  graph: {
    vms: ["02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:03"],
    edges: [
      { a: "02:00:00:00:00:01", b: "02:00:00:00:00:02", bytesPerSec: 2_500_000, weight: 1 },
      { a: "02:00:00:00:00:02", b: "02:00:00:00:00:03", bytesPerSec: 1_250_000, weight: 0.5 },
    ],
    maxBytesPerSec: 2_500_000,
  },
  matrix: [
    { src: "02:00:00:00:00:01", dst: "02:00:00:00:00:02", bytesPerSec: 1_300_000 },
    { src: "02:00:00:00:00:02", dst: "02:00:00:00:00:01", bytesPerSec: 1_200_000 },
    { src: "02:00:00:00:00:02", dst: "02:00:00:00:00:03", bytesPerSec: 600 },
  ],
  groupBytesPerSec: {},
  lastTickMs: 0.2,
  parameters: {
    updateIntervalMs: 1000,
    smoothingMs: 3000,
    threshold: 0.1,
    hysteresisMs: 1000,
    maxVms: 100,
  },
  events: [CHANGE],
};

/** `GET /api/topology?format=dot` (text). */
export const TOPOLOGY_DOT = 'graph vttif {\n  label="bus: 3 VMs";\n}\n\n';

/** `GET /api/adapt` and the answer to `PUT /api/adapt`. */
export const ADAPT: AdaptReply = {
  settings: { enabled: true, budget: 2, pins: ["h1|h2"], forbids: [], keepMargin: 0.2 },
  links: [{ pair: "h1|h2", phase: "up", since: T0 }],
  decisions: [
    {
      pair: "h1|h2",
      bytesPerSec: 2_500_000,
      vmPairs: [["02:00:00:00:00:01", "02:00:00:00:00:02"]],
      rank: 1,
      direct: true,
      reason: "direct: pinned",
    },
    {
      pair: "h2|h3",
      bytesPerSec: 1_250_000,
      vmPairs: [["02:00:00:00:00:02", "02:00:00:00:00:03"]],
      rank: 2,
      direct: false,
      reason: "star: over the budget",
    },
  ],
  reactions: [
    { detectedAt: T0, activeAt: T0 + 40, ms: 40, links: 1 },
    { detectedAt: T0 + 9000, activeAt: T0 + 9033, ms: 33, links: 1 },
  ],
  moves: [],
};

/** `GET /api/events`: one of each kind the proxy emits. */
export const EVENTS: VnetEvent[] = [
  { type: "host", at: T0, host: "h1", state: "joined", from: "10.0.0.1" },
  { ...CHANGE, type: "topology", at: T0 + 1500 },
  { type: "link", at: T0 + 1510, pair: "h1|h2", phase: "connecting", reason: "direct: pinned" },
  { type: "link", at: T0 + 1520, pair: "h1|h2", phase: "up" },
  { type: "reaction", at: T0 + 1540, ms: 40, links: 1, detectedAt: T0 + 1500 },
  { type: "vm", at: T0 + 2000, mac: "02:00:00:00:00:04", port: "host:h2", change: "learned" },
  {
    type: "vm",
    at: T0 + 2100,
    mac: "02:00:00:00:00:04",
    from: "host:h2",
    to: "host:h1",
    change: "moved",
  },
  { type: "reaction", at: T0 + 2130, kind: "migration", mac: "02:00:00:00:00:04", ms: 30 },
  { type: "host", at: T0 + 3000, host: "h2", state: "left", reason: "closed" },
];

/** `GET /api/vms`. */
export const VMS: VmsReply = [
  { mac: "02:00:00:00:00:01", host: "h1", firstSeen: T0, lastSeen: T0 + 5000, since: T0 },
  { mac: "02:00:00:00:00:09", host: "proxy (LAN)", firstSeen: T0, lastSeen: T0, since: T0 },
];

/** `GET /api/paths`. */
export const PATHS: PathsReply = [
  {
    a: "02:00:00:00:00:01",
    b: "02:00:00:00:00:02",
    hostA: "h1",
    hostB: "h2",
    bytesPerSec: 2_500_000,
    weight: 1,
    path: "direct",
    since: T0 + 1520,
    reason: "direct: pinned",
    link: { pair: "h1|h2", phase: "up" },
  },
  {
    a: "02:00:00:00:00:02",
    b: "02:00:00:00:00:09",
    hostA: "h2",
    hostB: null,
    bytesPerSec: 999,
    weight: 0.1,
    path: "star",
    since: null,
    reason: "a VM is on the proxy's LAN or unknown",
  },
];

/** `GET /api/links`. */
export const LINKS: LinksReply = {
  star: [{ host: "h1", ...LINK, rttMs: 0.5 }, { host: "h2", ...LINK, rttMs: null }],
  fastPaths: [{ hosts: ["h1", "h2"], phase: "up", since: T0 }],
};

/** `GET /api/rules`. */
export const RULES: RulesReply = {
  proxy: [{
    id: "*>02:00:00:00:00:02",
    src: null,
    dst: "02:00:00:00:00:02",
    target: "host:h2",
    owner: "operator",
    reason: "test",
    frames: 5,
    bytes: 500,
  }],
  hosts: { h1: [{ src: "02:00:00:00:00:01", dst: null, target: "drop", owner: "operator" }] },
};

/** `GET /api/hosts`. */
export const HOSTS: HostsReply = {
  hosts: [
    {
      name: "h1",
      key: "SHA256:abc",
      certSerial: "0a1b",
      certExpires: T0 + 86_400_000,
      firstJoined: T0,
      lastSeen: T0 + 1000,
      online: true,
    },
    {
      name: "h2",
      key: null,
      certSerial: null,
      certExpires: null,
      firstJoined: T0,
      lastSeen: 0,
      online: false,
    },
  ],
  revoked: [{ key: "SHA256:old", name: "h9", at: T0 + 5 }],
};

/** `POST /api/hosts/revoke`. */
export const REVOKED: RevokeReply = { revoked: { name: "h1", key: "SHA256:abc" } };

/** `POST /api/login`. */
export const LOGIN: LoginReply = {
  url: "http://127.0.0.1:7801/login?code=xyz",
  validForMs: 60_000,
};
