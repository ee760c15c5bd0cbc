/**
 * Subcommands that talk to a running proxy's control API and print readable tables
 * (`--json` for scripts):
 *
 *     agent status
 *     agent topology [--json|--dot]          smoothed traffic matrix and the inferred topology
 *     agent links | paths | adapt
 *     agent adapt set k=N|k=auto|pin A B|unpin A B|forbid A B|unforbid A B|off|on|migrate on|off
 *     agent underlay                         per host pair: RTT, bandwidth, bottleneck
 *     agent advise                           where VMs should live, why; migrations made
 *     agent advise set moves=N|gain=F|cost=X|pin MAC|unpin MAC|slots HOST N|auto
 *     agent rules list
 *     agent rules add SRC DST TARGET [HOST]     SRC/DST: a MAC or *, TARGET: device|proxy|drop|host:N|peer:N
 *     agent rules del SRC DST [HOST]
 *
 * Each subcommand is one entry of {@linkcode COMMANDS}: its words, its usage line and what it
 * asks the API. One ending serves them all: a refusal prints the API's error (exit 1), a
 * reply the command did not print itself is printed as JSON (exit 0), bad words print the
 * usage (exit 2).
 *
 *     words -> COMMANDS entry -> API call (api_client.ts) -> print.ts, or JSON, or the error
 *
 * The API address comes from `--api` (or the config file), default 127.0.0.1:7801; a bearer
 * token is read from `--state-dir`/api.token when that file exists.
 *
 * @module
 */

import type { Invocation } from "../../agent/config/load.ts";
import { type Answer, type ApiClient, apiClientFor } from "./api_client.ts";
import { readPages } from "./pages.ts";
import {
  type Print,
  printAdapt,
  printEvents,
  printHosts,
  printLinks,
  printPaths,
  printRules,
  printStatus,
  printTopology,
  printVms,
} from "./print.ts";
import { printAdvice, printUnderlay } from "./print_placement.ts";
import type {
  AdaptReply,
  LoginReply,
  PlacementReply,
  RevokeReply,
  RuleAddedReply,
  RuleRemovedReply,
  StatusReply,
  TopologyReply,
  VmsReply,
} from "../api_types.ts";

/** The command printed its answer itself. */
export const PRINTED = Symbol("printed");

/** What a command did: printed, or an answer for the common ending. */
export type Outcome = typeof PRINTED | Answer<unknown>;

/** What a command works with. */
export interface CommandContext {
  api: ApiClient;
  /** The words after the command's first two (`hosts revoke NAME` -> `["NAME"]`). */
  args: string[];
  /** `--dot`: the topology as GraphViz. */
  dot: boolean;
  out: Print;
  /** Prints a 200 reply with `print`, unless `--json` asked for the JSON. */
  show<T>(a: Answer<T>, print: (reply: T, out: Print) => void): Outcome;
}

/** Takes any second word (or none). */
export const ANY = "any";

/** One subcommand. */
export interface Command {
  /** The first word. */
  name: string;
  /** The second words it answers to (`undefined`: none given), or {@linkcode ANY}. */
  subs: typeof ANY | readonly (string | undefined)[];
  /** Its line in the usage text. */
  usage: string;
  /** Absent for a command main.ts runs itself (it needs no API). */
  run?(c: CommandContext): Promise<Outcome>;
}

/** Bad words on the command line: the usage is printed, exit 2. */
class UsageError extends Error {}

/** A command that GETs `path` and prints the reply with `print`. */
function showing<T>(path: string, print: (reply: T, out: Print) => void): Command["run"] {
  return async (c) => c.show(await c.api.call<T>("GET", path), print);
}

/** The command's words after its own, refused (with `usage`) unless `min` to `max` of them. */
function argsOf(c: CommandContext, want: { min: number; max: number; usage: string }): string[] {
  if (c.args.length < want.min || c.args.length > want.max) throw new UsageError(want.usage);
  return c.args;
}

/**
 * Every subcommand, in the order the usage lists them; adding one is adding an entry.
 *
 * @example
 * ```ts
 * import { COMMANDS } from "./commands.ts";
 * if (!COMMANDS.some((c) => c.name === "status")) throw new Error();
 * ```
 */
export const COMMANDS: readonly Command[] = [
  {
    name: "status",
    subs: ANY,
    usage: "agent status [--json]",
    run: async (c) =>
      c.show(
        // A host's status has no host list: its one reply is the whole of it.
        await readPages<StatusReply>(
          c.api,
          "/api/status",
          (r) => r.hosts?.length ?? 0,
          (all, p) => {
            all.hosts.push(...p.hosts);
            Object.assign(all.ports, p.ports);
          },
        ),
        printStatus,
      ),
  },
  {
    name: "topology",
    subs: ANY,
    usage: "agent topology [--json|--dot]",
    run: async (c) => {
      if (!c.dot) {
        return c.show(await c.api.call<TopologyReply>("GET", "/api/topology"), printTopology);
      }
      const a = await c.api.text("/api/topology?format=dot");
      if (!a.ok || a.status !== 200) return a;
      c.out(a.reply.trimEnd());
      return PRINTED;
    },
  },
  {
    name: "links",
    subs: ANY,
    usage: "agent links [--json]",
    run: showing("/api/links", printLinks),
  },
  {
    name: "vms",
    subs: ANY,
    usage: "agent vms [--json]                     (each VM's host, and since when it is there)",
    run: async (c) =>
      c.show(
        await readPages<VmsReply>(c.api, "/api/vms", (r) => r.length, (all, p) => all.push(...p)),
        printVms,
      ),
  },
  {
    name: "events",
    subs: ANY,
    usage: "agent events [--json]                  (recent host, link, topology, VM events)",
    run: showing("/api/events", printEvents),
  },
  {
    name: "paths",
    subs: ANY,
    usage: "agent paths [--json]                   (per VM pair: star or direct, and why)",
    run: showing("/api/paths", printPaths),
  },
  {
    name: "adapt",
    subs: [undefined, "show"],
    usage: "agent adapt [--json]",
    run: showing("/api/adapt", printAdapt),
  },
  {
    name: "adapt",
    subs: ["set"],
    usage:
      "agent adapt set k=N|k=auto|pin A B|unpin A B|forbid A B|unforbid A B|off|on|migrate on|off",
    run: async (c) =>
      c.show(await c.api.call<AdaptReply>("PUT", "/api/adapt", adaptChange(c.args)), printAdapt),
  },
  {
    name: "underlay",
    subs: ANY,
    usage: "agent underlay [--json]                (per host pair: RTT, bandwidth, bottleneck)",
    run: showing("/api/underlay", printUnderlay),
  },
  {
    name: "advise",
    subs: [undefined, "show"],
    usage: "agent advise [--json]                  (where VMs should live and why; migrations)",
    run: showing("/api/placement", printAdvice),
  },
  {
    name: "advise",
    subs: ["set"],
    usage: "agent advise set moves=N|gain=F|cost=X|pin MAC|unpin MAC|slots HOST N|slots HOST auto",
    run: async (c) =>
      c.show(
        await c.api.call<PlacementReply>("PUT", "/api/placement", placementChange(c.args)),
        printAdvice,
      ),
  },
  {
    name: "rules",
    subs: [undefined, "list"],
    usage: "agent rules list [--json]",
    run: showing("/api/rules", printRules),
  },
  {
    name: "rules",
    subs: ["add"],
    usage:
      "agent rules add SRC DST TARGET [HOST]   (SRC, DST: a MAC or *; TARGET: device, proxy, drop, host:NAME, peer:NAME)",
    run: (c) => {
      const [src, dst, target, host] = argsOf(c, {
        min: 3,
        max: 4,
        usage: "rules add takes SRC DST TARGET [HOST]",
      });
      return c.api.call<RuleAddedReply>("POST", "/api/rules", { src, dst, target, host });
    },
  },
  {
    name: "rules",
    subs: ["del"],
    usage: "agent rules del SRC DST [HOST]",
    run: (c) => {
      const [src, dst, host] = argsOf(c, {
        min: 2,
        max: 3,
        usage: "rules del takes SRC DST [HOST]",
      });
      const q = new URLSearchParams({ src, dst });
      if (host) q.set("host", host);
      return c.api.call<RuleRemovedReply>("DELETE", `/api/rules?${q}`);
    },
  },
  {
    name: "page",
    subs: [undefined],
    usage:
      "agent page                             (a one-time login link for the live page, valid 60 s)",
    run: async (c) => {
      const a = await c.api.call<LoginReply>("POST", "/api/login", {});
      return c.show(a, (r, out) => out(`Open this within 60 s (it works once): ${r.url}`));
    },
  },
  {
    name: "doctor",
    subs: [undefined],
    usage:
      "agent doctor [the daemon's flags]      (checks this machine for what the agent needs; no API)",
  },
  {
    name: "hosts",
    subs: [undefined],
    usage: "agent hosts [--json]                   (every admitted host: key, certificate, online)",
    run: showing("/api/hosts", printHosts),
  },
  {
    name: "hosts",
    subs: ["revoke"],
    usage: "agent hosts revoke NAME                (close its links, deny its key, free its name)",
    run: async (c) => {
      const [name] = argsOf(c, { min: 1, max: 1, usage: "hosts revoke takes NAME" });
      const a = await c.api.call<RevokeReply>("POST", "/api/hosts/revoke", { name });
      return c.show(a, ({ revoked: r }, out) => {
        const key = r.key ?? "(none bound)";
        out(`revoked ${r.name}: its links are closed and key ${key} is denied`);
      });
    },
  },
];

/** One line of usage per subcommand, for errors. */
export const COMMAND_USAGE = COMMANDS.map((c) => c.usage).join("\n  ");

/** The entry that runs `words`, if any. */
function commandFor([name, sub]: string[]): Command | undefined {
  return COMMANDS.find((c) =>
    c.run !== undefined && c.name === name && (c.subs === ANY || c.subs.includes(sub))
  );
}

/** Runs the subcommand of `inv`; resolves to the exit code. */
export async function runCommand(
  inv: Invocation,
  out: Print = console.log,
  err: Print = console.error,
): Promise<number> {
  const api = await apiClientFor(inv.config);
  try {
    const command = commandFor(inv.command);
    if (!command?.run) throw new UsageError(`unknown command "${inv.command.join(" ")}"`);
    const outcome = await command.run({
      api,
      args: inv.command.slice(2),
      dot: inv.dot,
      out,
      show: (a, print) => {
        if (!a.ok || a.status !== 200 || inv.json) return a;
        print(a.reply, out);
        return PRINTED;
      },
    });
    if (outcome === PRINTED) return 0;
    if (!outcome.ok) {
      err(`agent: ${outcome.error ?? `the API answered ${outcome.status}`}`);
      return 1;
    }
    out(JSON.stringify(outcome.reply, null, 2));
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

/**
 * The PUT body for `agent adapt set ...`.
 *
 * @example
 * ```ts
 * import { adaptChange } from "./commands.ts";
 * if (adaptChange(["k=auto"]).budget !== "auto") throw new Error();
 * ```
 */
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
  if (words.length === 2 && w === "migrate" && (a === "on" || a === "off")) {
    return { migrate: a === "on" };
  }
  throw new UsageError(
    `adapt set takes k=N, k=auto, pin A B, unpin A B, forbid A B, unforbid A B, off, on, ` +
      `migrate on or migrate off`,
  );
}

/**
 * The PUT body for `agent advise set ...`.
 *
 * @example
 * ```ts
 * import { placementChange } from "./commands.ts";
 * if (placementChange(["slots", "h1", "4"]).slots?.toString() !== "h1,4") throw new Error();
 * if (placementChange(["gain=0.2"]).minGain !== 0.2) throw new Error();
 * ```
 */
export function placementChange(words: string[]): Record<string, unknown> {
  const [w, a, b] = words;
  const setting = /^(moves|gain|cost)=(\d+(\.\d+)?)$/.exec(words.length === 1 ? w : "");
  if (setting) {
    const key = { moves: "maxMoves", gain: "minGain", cost: "moveCost" }[setting[1]]!;
    return { [key]: Number(setting[2]) };
  }
  if (words.length === 2 && (w === "pin" || w === "unpin")) return { [w]: a };
  if (words.length === 3 && w === "slots" && /^(\d+|auto)$/.test(b)) {
    return { slots: [a, b === "auto" ? null : Number(b)] };
  }
  throw new UsageError(
    "advise set takes moves=N, gain=F (0.1 = 10%), cost=X, pin MAC, unpin MAC, " +
      "slots HOST N or slots HOST auto",
  );
}
