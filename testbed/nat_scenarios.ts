/**
 * Fast paths across NATs, firewalls and IPv6 on the namespace lab: two hosts with one VM each,
 * each host behind the edge its scenario names (testbed/nat.ts), the proxy open on the
 * underlay. Shared by the lab test (tests/lab/nat_test.ts) and `bench:nat`.
 *
 *     scenario -> lab (edges, IPv6) -> agents -> traffic VM1 <-> VM2 -> the pair's outcome:
 *     direct (who dialed, or punched) with the time from wanted to up, or the star and why
 *
 * @module
 */

import { FAST_VTTIF, Lab } from "./lab.ts";
import { type Edge, ipv6Underlay, placeBehind, PROXY_V6_ADDR } from "./nat.ts";

/** One NAT/firewall/IPv6 scenario. */
export interface NatScenario {
  name: string;
  /** What stands in front of h1 and h2. */
  edges: [Edge, Edge];
  /** The underlay is IPv6 only, or dual-stack with h2 joining over IPv6 and h1 over IPv4. */
  ipv6?: "only" | "dual";
  /** What must happen: direct with this origin, or the star. */
  expect: "h1 dials" | "h2 dials" | "punch" | "star";
}

/** The scenarios, in the order the README table lists them. */
export const NAT_SCENARIOS: NatScenario[] = [
  { name: "both reachable", edges: ["open", "open"], expect: "h1 dials" },
  { name: "h2 behind a NAT", edges: ["open", "nat"], expect: "h2 dials" },
  { name: "h1 behind a NAT", edges: ["nat", "open"], expect: "h1 dials" },
  {
    name: "h2 behind a firewall dropping inbound",
    edges: ["open", "firewall"],
    expect: "h2 dials",
  },
  { name: "both behind port-preserving NATs", edges: ["nat", "nat"], expect: "punch" },
  { name: "NAT and firewall", edges: ["nat", "firewall"], expect: "punch" },
  {
    name: "both behind port-randomising NATs",
    edges: ["nat-random", "nat-random"],
    expect: "star",
  },
  { name: "IPv6-only underlay", edges: ["open", "open"], ipv6: "only", expect: "h1 dials" },
  {
    name: "dual stack, h1 joined over IPv4, h2 over IPv6",
    edges: ["open", "open"],
    ipv6: "dual",
    expect: "h1 dials",
  },
];

/** What became of the pair h1|h2. */
export interface PairOutcome {
  path: "direct" | "star";
  /** "h2 dials", "punch", ... as {@linkcode NatScenario.expect} says it. */
  how: NatScenario["expect"];
  /** ms from the plan wanting the link to both ends up (direct only). */
  upAfterMs: number | null;
  reason: string;
}

/** A running lab for `s`: edges placed, agents started (adaptation as `adapt` says). */
export async function natLab(
  s: NatScenario,
  options: {
    adapt?: boolean;
    proxyArgs?: string[];
    hostArgs?: string[];
    /** Flags for host i alone. */
    hostExtra?: (i: number) => string[];
    /** Runs after the edges are placed, before the agents start (e.g. a port forward). */
    prepare?: (lab: Lab) => Promise<void>;
  } = {},
): Promise<Lab> {
  const lab = await Lab.create({
    hosts: 2,
    lan: false,
    proxyArgs: [...FAST_VTTIF, ...(options.adapt === false ? ["--no-adapt"] : [])],
    hostArgs: [...FAST_VTTIF, ...(options.hostArgs ?? [])],
  });
  try {
    if (s.ipv6) await ipv6Underlay(lab, { keepIPv4: s.ipv6 === "dual" });
    for (const i of [1, 2]) await placeBehind(lab, i, s.edges[i - 1]);
    await options.prepare?.(lab);
    await lab.startProxy([
      ...(s.ipv6 ? ["--listen", "[::]:7800"] : []),
      ...(options.proxyArgs ?? []),
    ]);
    for (const i of [1, 2]) {
      await lab.startHost(i, [
        ...(s.ipv6 === "only" || (s.ipv6 === "dual" && i === 2) ? ["--join", PROXY_V6_ADDR] : []),
        ...(options.hostExtra?.(i) ?? []),
      ]);
    }
  } catch (e) {
    await lab.close();
    throw e;
  }
  return lab;
}

/** Pings VM1 -> VM2 every 50 ms until the returned function is called (VTTIF sees traffic). */
export function keepTalking(lab: Lab): () => Promise<void> {
  let on = true;
  const done = (async () => {
    while (on) await lab.ping(lab.vms[0].ns, lab.vms[1].ip, { count: 20, intervalS: 0.05 });
  })();
  return async () => {
    on = false;
    await done;
  };
}

/**
 * Waits until the pair h1|h2 is settled: its link up, or resting on the star after every
 * attempt failed; throws after `timeoutMs`.
 */
export async function pairOutcome(lab: Lab, timeoutMs = 40_000): Promise<PairOutcome> {
  const until = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < until) {
    const adapt = await lab.agentJson("adapt");
    const d = adapt.decisions.find((x: { pair: string }) => x.pair === "h1|h2");
    const link = adapt.links.find((x: { pair: string }) => x.pair === "h1|h2");
    last = d?.reason ?? "no decision yet";
    if (link?.phase === "up" && d?.direct) {
      const paths = await lab.agentJson("paths");
      const p = paths.find((x: { hostA: string; hostB: string }) =>
        [x.hostA, x.hostB].sort().join("|") === "h1|h2"
      );
      const origin = link.origin as { how: string; dialer?: string } | null;
      return {
        path: "direct",
        how: origin?.how === "punch" ? "punch" : `${origin?.dialer} dials` as NatScenario["expect"],
        upAfterMs: p?.upAfterMs ?? null,
        reason: d.reason,
      };
    }
    if (/next try in/.test(last)) {
      return { path: "star", how: "star", upAfterMs: null, reason: last };
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`Cannot see the pair h1|h2 settle within ${timeoutMs} ms; last: ${last}`);
}
