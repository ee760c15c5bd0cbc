/**
 * Subcommands that talk to a running proxy's control API and print readable tables
 * (`--json` for scripts):
 *
 *     agent status
 *     agent topology [--json|--dot]          smoothed traffic matrix and the inferred topology
 *     agent links | paths | adapt
 *     agent adapt set k=N|k=auto|pin A B|unpin A B|forbid A B|unforbid A B|off|on
 *     agent rules list
 *     agent rules add SRC DST TARGET [HOST]     SRC/DST: a MAC or *, TARGET: device|proxy|drop|host:N|peer:N
 *     agent rules del SRC DST [HOST]
 *
 * The API address comes from `--api` (or the config file), default 127.0.0.1:7801; a bearer
 * token is read from `--state-dir`/api.token when that file exists.
 *
 * @module
 */

import type { Invocation } from "../config/load.ts";
import { formatAddress } from "../config/types.ts";
import { formatRate } from "../rate.ts";

/** The API client's answer. */
interface Reply {
  status: number;
  body: Record<string, unknown>;
}

/** One line of usage per subcommand, for errors. */
export const COMMAND_USAGE = [
  "agent status [--json]",
  "agent topology [--json|--dot]",
  "agent links [--json]",
  "agent vms [--json]                     (each VM's host, and since when it is there)",
  "agent events [--json]                  (recent host, link, topology, VM events)",
  "agent paths [--json]                   (per VM pair: star or direct, and why)",
  "agent adapt [--json]",
  "agent adapt set k=N|k=auto|pin A B|unpin A B|forbid A B|unforbid A B|off|on",
  "agent rules list [--json]",
  "agent rules add SRC DST TARGET [HOST]   (SRC, DST: a MAC or *; TARGET: device, proxy, drop, host:NAME, peer:NAME)",
  "agent rules del SRC DST [HOST]",
  "agent page                             (a one-time login link for the live page, valid 60 s)",
  "agent doctor [the daemon's flags]      (checks this machine for what the agent needs; no API)",
  "agent hosts [--json]                   (every admitted host: key, certificate, online)",
  "agent hosts revoke NAME                (close its links, deny its key, free its name)",
].join("\n  ");

class UsageError extends Error {}

/** Runs the subcommand of `inv`; resolves to the exit code. */
export async function runCommand(
  inv: Invocation,
  out = console.log,
  err = console.error,
): Promise<number> {
  const api = inv.config.api ?? { hostname: "127.0.0.1", port: 7801 };
  const base = `http://${formatAddress(api)}`;
  const token = await Deno.readTextFile(`${inv.config.stateDir}/api.token`).then(
    (t) => t.trim(),
    () => null,
  );
  const call = async (
    method: string,
    path: string,
    body?: unknown,
    as: "json" | "text" = "json",
  ): Promise<Reply> => {
    let res: Response;
    try {
      res = await fetch(base + path, {
        method,
        headers: {
          ...(body === undefined ? {} : { "content-type": "application/json" }),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(5000),
      });
    } catch (e) {
      throw new Error(
        `Cannot reach the proxy's API at ${base}: ${(e as Error).message.split("\n")[0]}. ` +
          "Is `agent --proxy` running on this machine? Give its address with --api ADDR:PORT",
      );
    }
    if (as === "text" && res.ok) return { status: res.status, body: { text: await res.text() } };
    return { status: res.status, body: await res.json().catch(() => ({})) };
  };
  const [cmd, sub, ...rest] = inv.command;
  try {
    let reply: Reply;
    if (cmd === "status") {
      reply = await call("GET", "/api/status");
      if (reply.status === 200 && !inv.json) {
        printStatus(reply.body, out);
        return 0;
      }
    } else if (cmd === "topology") {
      if (inv.dot) {
        const res = await call("GET", "/api/topology?format=dot", undefined, "text");
        if (res.status === 200) {
          out(String(res.body.text).trimEnd());
          return 0;
        }
        reply = res;
      } else {
        reply = await call("GET", "/api/topology");
        if (reply.status === 200 && !inv.json) {
          printTopology(reply.body, out);
          return 0;
        }
      }
    } else if (cmd === "adapt" && (sub === undefined || sub === "show")) {
      reply = await call("GET", "/api/adapt");
      if (reply.status === 200 && !inv.json) {
        printAdapt(reply.body, out);
        return 0;
      }
    } else if (cmd === "adapt" && sub === "set") {
      reply = await call("PUT", "/api/adapt", adaptChange(rest));
      if (reply.status === 200 && !inv.json) {
        printAdapt(reply.body, out);
        return 0;
      }
    } else if (cmd === "events" || cmd === "vms") {
      reply = await call("GET", `/api/${cmd}`);
      if (reply.status === 200 && !inv.json) {
        const rows = reply.body as unknown as Record<string, unknown>[];
        if (cmd === "events") {
          for (const e of rows) {
            const { type, at, ...rest } = e;
            out(`${new Date(Number(at)).toISOString()}  ${type}  ${JSON.stringify(rest)}`);
          }
        } else {
          out(table(
            ["vm", "host", "first seen", "last seen", "there since"],
            rows.map((v) => [
              String(v.mac),
              String(v.host),
              new Date(Number(v.firstSeen)).toISOString(),
              new Date(Number(v.lastSeen)).toISOString(),
              new Date(Number(v.since)).toISOString(),
            ]),
          ));
        }
        return 0;
      }
    } else if (cmd === "paths" || cmd === "links") {
      reply = await call("GET", `/api/${cmd}`);
      if (reply.status === 200 && !inv.json) {
        if (cmd === "paths") printPaths(reply.body as unknown as PathRow[], out);
        else printLinks(reply.body, out);
        return 0;
      }
    } else if (cmd === "page" && sub === undefined) {
      reply = await call("POST", "/api/login", {});
      if (reply.status === 200 && !inv.json) {
        out(`Open this within 60 s (it works once): ${reply.body.url}`);
        return 0;
      }
    } else if (cmd === "hosts" && sub === undefined) {
      reply = await call("GET", "/api/hosts");
      if (reply.status === 200 && !inv.json) {
        printHosts(reply.body, out);
        return 0;
      }
    } else if (cmd === "hosts" && sub === "revoke") {
      if (rest.length !== 1) throw new UsageError("hosts revoke takes NAME");
      reply = await call("POST", "/api/hosts/revoke", { name: rest[0] });
      if (reply.status === 200 && !inv.json) {
        const r = reply.body.revoked as { name: string; key: string | null };
        out(`revoked ${r.name}: its links are closed and key ${r.key ?? "(none bound)"} is denied`);
        return 0;
      }
    } else if (cmd === "rules" && (sub === "list" || sub === undefined)) {
      reply = await call("GET", "/api/rules");
      if (reply.status === 200 && !inv.json) {
        printRules(reply.body, out);
        return 0;
      }
    } else if (cmd === "rules" && sub === "add") {
      if (rest.length < 3 || rest.length > 4) {
        throw new UsageError("rules add takes SRC DST TARGET [HOST]");
      }
      const [src, dst, target, host] = rest;
      reply = await call("POST", "/api/rules", { src, dst, target, host });
    } else if (cmd === "rules" && sub === "del") {
      if (rest.length < 2 || rest.length > 3) {
        throw new UsageError("rules del takes SRC DST [HOST]");
      }
      const q = new URLSearchParams({ src: rest[0], dst: rest[1] });
      if (rest[2]) q.set("host", rest[2]);
      reply = await call("DELETE", `/api/rules?${q}`);
    } else {
      throw new UsageError(`unknown command "${inv.command.join(" ")}"`);
    }
    if (reply.status >= 400) {
      err(`agent: ${reply.body.error ?? `the API answered ${reply.status}`}`);
      return 1;
    }
    out(JSON.stringify(reply.body, null, 2));
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      err(`agent: ${e.message}; usage:\n  ${COMMAND_USAGE}`);
      return 2;
    }
    err(`agent: ${(e as Error).message}`);
    return 1;
  }
}

function printHosts(body: Record<string, unknown>, out: (s: string) => void) {
  const when = (ms: unknown) =>
    typeof ms === "number" && ms > 0 ? new Date(ms).toISOString().slice(0, 19) + "Z" : "-";
  const hosts = (body.hosts ?? []) as Record<string, unknown>[];
  out(
    hosts.length
      ? table(
        ["host", "online", "key", "certificate", "expires", "first joined", "last joined"],
        hosts.map((h) => [
          String(h.name),
          h.online ? "yes" : "no",
          String(h.key ?? "-"),
          String(h.certSerial ?? "-"),
          when(h.certExpires),
          when(h.firstJoined),
          when(h.lastSeen),
        ]),
      )
      : "no hosts admitted yet",
  );
  const revoked = (body.revoked ?? []) as { key: string; name: string; at: number }[];
  if (revoked.length) {
    out("\nrevoked keys:");
    out(table(["key", "was", "revoked"], revoked.map((r) => [r.key, r.name, when(r.at)])));
  }
}

/** Formats rows as an aligned text table. */
export function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  return cells.map((r) => r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd()).join("\n");
}

function printStatus(s: Record<string, unknown>, out: (s: string) => void) {
  const hosts = (s.hosts ?? []) as Record<string, number | string | null>[];
  out(
    `proxy ${s.version}, up ${
      Math.round(Number(s.uptimeMs) / 1000)
    } s, ${s.macs} MACs, ${s.rules} rules`,
  );
  out(table(
    ["host", "rx frames", "rx bytes", "tx frames", "tx drops", "rtt ms"],
    hosts.map((h) => [
      String(h.name),
      Number(h.rxFrames),
      Number(h.rxBytes),
      Number(h.frames),
      Number(h.frameDrops),
      h.rttMs === null ? "-" : Number(h.rttMs).toFixed(2),
    ]),
  ));
  const drops = Object.entries((s.drops ?? {}) as Record<string, number>).filter(([, n]) => n > 0);
  if (drops.length) out(`drops: ${drops.map(([k, n]) => `${k}=${n}`).join(" ")}`);
}

function printRules(r: Record<string, unknown>, out: (s: string) => void) {
  const rows: (string | number)[][] = [];
  for (const x of (r.proxy ?? []) as Record<string, string | number | null>[]) {
    rows.push([
      "proxy",
      x.src ?? "*",
      x.dst ?? "*",
      String(x.target),
      Number(x.frames),
      Number(x.bytes),
      String(x.owner),
    ]);
  }
  for (
    const [host, list] of Object.entries(
      (r.hosts ?? {}) as Record<string, Record<string, string | null>[]>,
    )
  ) {
    for (const x of list) {
      rows.push([host, x.src ?? "*", x.dst ?? "*", String(x.target), "-", "-", String(x.owner)]);
    }
  }
  out(
    rows.length
      ? table(["on", "src", "dst", "target", "frames", "bytes", "owner"], rows)
      : "no rules",
  );
}

function printTopology(t: Record<string, unknown>, out: (s: string) => void) {
  const c = t.classification as { kind: string; summary: string };
  const g = t.graph as { edges: { a: string; b: string; bytesPerSec: number; weight: number }[] };
  const matrix = (t.matrix ?? []) as { src: string; dst: string; bytesPerSec: number }[];
  const events = (t.events ?? []) as { from: string; to: string; detectedAt: number }[];
  out(`topology: ${c.summary}`);
  if (g.edges.length) {
    out(table(
      ["vm a", "vm b", "traffic", "weight"],
      g.edges.map((e) => [e.a, e.b, formatRate(e.bytesPerSec), e.weight.toFixed(2)]),
    ));
  }
  out(`\nsmoothed matrix (${matrix.length} pairs, heaviest first):`);
  out(
    table(
      ["src", "dst", "traffic"],
      matrix.slice(0, 40).map((m) => [m.src, m.dst, formatRate(m.bytesPerSec)]),
    ),
  );
  if (events.length) {
    out("\nchanges:");
    for (const e of events.slice(-10)) {
      out(`  ${new Date(e.detectedAt).toISOString()}  ${e.from} -> ${e.to}`);
    }
  }
}

/** The PUT body for `agent adapt set ...`. */
export function adaptChange(words: string[]): Record<string, unknown> {
  const [w, a, b] = words;
  if (words.length === 1 && w === "off") return { enabled: false };
  if (words.length === 1 && w === "on") return { enabled: true };
  if (words.length === 1 && /^k=(auto|\d+)$/.test(w ?? "")) {
    const k = w.slice(2);
    return { budget: k === "auto" ? "auto" : Number(k) };
  }
  if (words.length === 3 && ["pin", "unpin", "forbid", "unforbid"].includes(w)) {
    return { [w]: [a, b] };
  }
  throw new UsageError(
    `adapt set takes k=N, k=auto, pin A B, unpin A B, forbid A B, unforbid A B, off or on`,
  );
}

interface PathRow {
  a: string;
  b: string;
  hostA: string | null;
  hostB: string | null;
  bytesPerSec: number;
  path: string;
  since: number | null;
  reason: string;
}

function printPaths(rows: PathRow[], out: (s: string) => void) {
  if (rows.length === 0) return out("no communicating VM pairs in the inferred topology");
  out(table(
    ["vm a", "vm b", "hosts", "traffic", "path", "since", "why"],
    rows.map((r) => [
      r.a,
      r.b,
      `${r.hostA ?? "?"}-${r.hostB ?? "?"}`,
      formatRate(r.bytesPerSec),
      r.path,
      r.since ? new Date(r.since).toISOString().slice(11, 19) : "-",
      r.reason,
    ]),
  ));
}

function printLinks(l: Record<string, unknown>, out: (s: string) => void) {
  const star = (l.star ?? []) as Record<string, number | string | null>[];
  const fast = (l.fastPaths ?? []) as { hosts: string[]; phase: string; since: number }[];
  out(table(
    ["link", "kind", "state", "rx frames", "tx frames", "drops", "rtt ms"],
    [
      ...star.map((h) => [
        `proxy-${h.host}`,
        "star",
        "up",
        Number(h.rxFrames),
        Number(h.frames),
        Number(h.frameDrops),
        h.rttMs === null ? "-" : Number(h.rttMs).toFixed(2),
      ]),
      ...fast.map((f) => [f.hosts.join("-"), "fast path", f.phase, "-", "-", "-", "-"]),
    ],
  ));
}

function printAdapt(a: Record<string, unknown>, out: (s: string) => void) {
  const s = a.settings as {
    enabled: boolean;
    budget: number | null;
    pins: string[];
    forbids: string[];
  };
  const reactions = (a.reactions ?? []) as { ms: number }[];
  out(
    `adaptation ${s.enabled ? "on" : "off"}, k=${s.budget ?? "auto"}, pins ${
      s.pins.join(" ") || "-"
    }, ` +
      `forbidden ${s.forbids.join(" ") || "-"}`,
  );
  if (reactions.length) out(`last VNET reaction: ${reactions[reactions.length - 1].ms} ms`);
  const decisions = (a.decisions ?? []) as {
    pair: string;
    rank: number;
    direct: boolean;
    reason: string;
  }[];
  if (decisions.length) {
    out(
      table(
        ["host pair", "rank", "path", "why"],
        decisions.map((d) => [d.pair, d.rank, d.direct ? "direct" : "star", d.reason]),
      ),
    );
  }
}
