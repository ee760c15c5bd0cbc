/**
 * Which hosts others can dial, known rather than assumed. For every host the proxy keeps where
 * its star link comes from (its outside address: behind a NAT, the NAT's), where it says it
 * accepts fast paths, and whether it can really be reached there: the proxy dials it itself,
 * verifying the host's certificate by its key (agent/fastpath/handshake.ts `probePeer`).
 *
 *     host: listening {address ":PORT" | ip:port, advertise?}
 *       -> candidates (listenCandidates): --advertise, an explicit address, the outside
 *          address with the listening port
 *       -> probe each (TLS to the host's key, HELLO probe, WELCOME), in parallel, bounded
 *       -> reachable at the first that answered (handed to peers) | unreachable, with why
 *
 * An address is handed to peers only once the host answered there with its own key: a host
 * cannot make its peers dial a machine of its choosing, and an advertised port forward that
 * does not lead to the host is never used. Unreachable hosts are checked again after
 * {@linkcode RECHECK_MS} (as their reports arrive), and any host when a peer failed to dial it.
 *
 * At most {@linkcode MAX_CHECKS} hosts are checked at once, the rest wait their turn (a peer's
 * failed dial goes first): every check is a TLS handshake the proxy makes and the host answers,
 * and a join storm's ten thousand checks, all started at once, competed with the joins for
 * both ends' CPU. They now follow the joins.
 *
 * @module
 */

import type { Clock } from "../agent/clock.ts";
import { type Address, formatAddress, parseAddress } from "../agent/config/types.ts";
import { logger } from "../agent/log.ts";

/** How long the proxy waits for a host to answer a probe. */
export const PROBE_TIMEOUT_MS = 2_000;
/** An unreachable host is checked again after this long. */
export const RECHECK_MS = 60_000;
/** Hosts checked at once (each with its candidates in parallel). */
export const MAX_CHECKS = 16;
/**
 * A host's `listening` is acted on at most this often per link (each is a TLS dial by the
 * proxy); a host says it once per link, so more is a bug or an attempt to keep the proxy
 * dialing. A link that comes up anew may say it at once.
 */
export const LISTENING_GAP_MS = 10_000;

/** Why a host's `listening` was not acted on. */
export type ReachabilityRefusal = "listening too often";

/** An address a host could be dialed at, and where it came from. */
export interface ListenCandidate {
  address: string;
  /** Why it is tried: the address the host joined from, or one it claimed. */
  source: "joined from" | "listen" | "advertised";
}

/** What the proxy knows about reaching one host. */
export interface HostReach {
  host: string;
  /** Where its star link comes from, as the proxy sees it. */
  outside: Address;
  /** What it said in `listening`, or null before it did. */
  said: { address: string; advertise: string | null } | null;
  state: "not listening" | "checking" | "reachable" | "unreachable";
  /** The address peers are sent to: one the proxy reached it at. */
  listen: string | null;
  /** One line: what was tried and what came of it. */
  reason: string;
  /** When the last check finished (ms), or null. */
  checkedAt: number | null;
}

/** What checking needs: a probe (dial + verify the host's key) and a clock. */
export interface ReachabilityDeps {
  /** Resolves when the host with `key` answers at `address`; rejects with why not. */
  probe(address: Address, key: string, timeoutMs: number): Promise<void>;
  clock: Clock;
}

/**
 * The proxy's book of host reachability.
 *
 * @example
 * ```ts
 * import { Reachability } from "./reachability.ts";
 * import { ManualClock } from "../agent/manual_clock.ts";
 * const reach = new Reachability({
 *   clock: new ManualClock(),
 *   probe: (a) => a.port === 7810 ? Promise.resolve() : Promise.reject(new Error("refused")),
 * });
 * reach.joined("h1", { hostname: "10.0.0.5", port: 40000 });
 * await reach.listening("h1", { address: ":7810", advertise: null }, "SHA256:k");
 * if (reach.get("h1")?.listen !== "10.0.0.5:7810") throw new Error("reached where it joined from");
 * ```
 */
export class Reachability {
  readonly #deps: ReachabilityDeps;
  readonly #hosts = new Map<string, HostReach>();
  readonly #keys = new Map<string, string>();
  /** Bumped per host by every new check: a result of an older one is dropped. */
  readonly #generation = new Map<string, number>();
  /** Checks running now. */
  #running = 0;
  /** Hosts waiting for a turn, in order, and the check each will run. */
  #turns: string[] = [];
  readonly #waiting = new Map<string, { start(): void; done: Promise<void> }>();
  /** When each host's `listening` was last acted on, on its current link. */
  readonly #saidAt = new Map<string, number>();
  /** `listening` messages not acted on, by reason. */
  readonly refused: Record<ReachabilityRefusal, number> = { "listening too often": 0 };
  readonly #log = logger("proxy");

  constructor(deps: ReachabilityDeps) {
    this.#deps = deps;
  }

  /** A host's star link is up, from `outside`. */
  joined(host: string, outside: Address): void {
    this.#generation.set(host, (this.#generation.get(host) ?? 0) + 1);
    this.#saidAt.delete(host);
    this.#hosts.set(host, {
      host,
      outside,
      said: null,
      state: "not listening",
      listen: null,
      reason: `${host} has not said where it accepts fast paths`,
      checkedAt: null,
    });
  }

  /** A host left: forgotten. */
  forget(host: string): void {
    this.#saidAt.delete(host);
    this.#hosts.delete(host);
    this.#keys.delete(host);
    this.#generation.set(host, (this.#generation.get(host) ?? 0) + 1);
  }

  /** What is known about `host`. */
  get(host: string): HostReach | undefined {
    return this.#hosts.get(host);
  }

  /** Every connected host's reachability. */
  all(): HostReach[] {
    return [...this.#hosts.values()];
  }

  /**
   * The host said where it listens (`key`: the key it joined with, which its certificate
   * carries); checks it and resolves when the check is done.
   */
  async listening(
    host: string,
    said: { address: string; advertise: string | null },
    key: string,
  ): Promise<void> {
    const r = this.#hosts.get(host);
    if (!r) return;
    const now = this.#deps.clock.now();
    const last = this.#saidAt.get(host);
    if (last !== undefined && now >= last && now - last < LISTENING_GAP_MS) {
      this.refused["listening too often"]++;
      return;
    }
    this.#saidAt.set(host, now);
    r.said = said;
    this.#keys.set(host, key);
    if (r.state === "not listening") {
      r.state = "checking";
      r.reason = `${host} said it accepts fast paths at ${said.address}; checking whether it can ` +
        "be reached there";
    }
    await this.check(host);
  }

  /** Hosts waiting for their turn to be checked. */
  get queued(): number {
    return this.#waiting.size;
  }

  /**
   * Checks `host` (again: a peer could not dial it, or it was unreachable for a while) once
   * it has a turn; resolves when that check is done. `first`: ahead of those waiting (a peer
   * waits for the answer). A host already waiting keeps its one place.
   */
  check(host: string, first = false): Promise<void> {
    const queued = this.#waiting.get(host);
    if (queued) {
      if (first) this.#turns = [host, ...this.#turns.filter((h) => h !== host)];
      return queued.done;
    }
    if (this.#running < MAX_CHECKS) return this.#run(host);
    let start = () => {};
    const done = new Promise<void>((resolve) => start = () => resolve(this.#run(host)));
    this.#waiting.set(host, { start, done });
    if (first) this.#turns.unshift(host);
    else this.#turns.push(host);
    return done;
  }

  /** Runs one check in a turn of its own; the next waiting host's turn follows. */
  async #run(host: string): Promise<void> {
    this.#running++;
    try {
      await this.#checkNow(host);
    } finally {
      this.#running--;
      const next = this.#turns.shift();
      if (next !== undefined) {
        const w = this.#waiting.get(next)!;
        this.#waiting.delete(next);
        w.start();
      }
    }
  }

  async #checkNow(host: string): Promise<void> {
    const r = this.#hosts.get(host);
    const key = this.#keys.get(host);
    if (!r || !r.said || key === undefined) return;
    const generation = (this.#generation.get(host) ?? 0) + 1;
    this.#generation.set(host, generation);
    const { candidates, problem } = listenCandidates(r.said, r.outside.hostname);
    const wasReachable = r.state === "reachable" ? r.listen : null;
    // A known state stays while it is checked again: a working fast path is not dropped for it.
    if (r.state === "not listening") r.state = "checking";
    const results = await Promise.allSettled(
      candidates.map((c) =>
        this.#deps.probe(parseAddress(c.address), key, PROBE_TIMEOUT_MS).then(() => c)
      ),
    );
    if (this.#generation.get(host) !== generation || this.#hosts.get(host) !== r) return;
    r.checkedAt = this.#deps.clock.now();
    const ok = results.findIndex((x) => x.status === "fulfilled");
    if (ok >= 0) {
      const c = candidates[ok];
      r.state = "reachable";
      r.listen = c.address;
      r.reason = `the proxy reached ${host} at ${c.address} (${c.source})`;
    } else {
      r.state = "unreachable";
      r.listen = null;
      const tried = results.map((x, i) =>
        `at ${candidates[i].address} (${candidates[i].source}): ${
          shortError((x as PromiseRejectedResult).reason)
        }`
      );
      r.reason = [
        `the proxy could not reach ${host} ${tried.join("; ") || "(no address to try)"}`,
        ...(problem ? [problem] : []),
      ].join("; ");
    }
    if (r.listen !== wasReachable || ok < 0) {
      const level = ok >= 0 ? "info" : "warn";
      this.#log[level]("Host {host} is {state}: {reason}", {
        host,
        state: r.state,
        reason: r.reason,
      });
    }
  }

  /**
   * Checks `host` again if it was unreachable at its last check, {@linkcode RECHECK_MS} or
   * more ago (a firewall opened, a port forward was added). Called as the host reports.
   */
  recheckIfDue(host: string, now: number): void {
    const r = this.#hosts.get(host);
    if (r?.state === "unreachable" && now - (r.checkedAt ?? now) >= RECHECK_MS) {
      void this.check(host);
    }
  }
}

/**
 * The addresses to try for a host that said `said` and joined from `joinedFrom`, in order of
 * preference: its `--advertise` (a port forward), an explicit listen address, then the address
 * it joined from with its listening port. Nothing here is handed to peers untried.
 *
 * @example
 * ```ts
 * import { listenCandidates } from "./reachability.ts";
 * const c = listenCandidates({ address: ":7810", advertise: "198.51.100.7:7000" }, "10.0.0.5");
 * const got = c.candidates.map((x) => x.address).join(" ");
 * if (got !== "198.51.100.7:7000 10.0.0.5:7810") throw new Error(got);
 * ```
 */
export function listenCandidates(
  said: { address: string; advertise: string | null },
  joinedFrom: string,
): { candidates: ListenCandidate[]; problem: string | null } {
  const out: ListenCandidate[] = [];
  const add = (address: string, source: ListenCandidate["source"]) => {
    if (!out.some((c) => c.address === address)) out.push({ address, source });
  };
  const problems: string[] = [];
  if (said.advertise !== null) {
    try {
      add(formatAddress(parseAddress(said.advertise)), "advertised");
    } catch (e) {
      problems.push(`its advertised ${said.advertise} is not an address: ${(e as Error).message}`);
    }
  }
  try {
    const a = parseAddress(said.address);
    const wildcard = a.hostname === "0.0.0.0" || a.hostname === "::";
    if (!wildcard && a.hostname !== joinedFrom) add(formatAddress(a), "listen");
    add(formatAddress({ hostname: joinedFrom, port: a.port }), "joined from");
  } catch (e) {
    problems.push(`its address ${said.address} is not one: ${(e as Error).message}`);
  }
  return { candidates: out, problem: problems.length ? problems.join("; ") : null };
}

/** An error as a few words for a reason line. */
function shortError(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  if (e instanceof Error && e.name === "DialTimeout") return "no answer (timed out)";
  if (/refused/i.test(msg)) return "connection refused";
  if (/unreachable/i.test(msg)) return "network unreachable";
  return msg.replace(/^Cannot [^:]*: /, "").slice(0, 120);
}
