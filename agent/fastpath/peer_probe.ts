/**
 * A host's side of the proxy's underlay RTT probes (proxy/underlay_probes.ts): the proxy names
 * a peer it reached itself, and this host times one round trip to that peer's fast-path
 * listener and answers.
 *
 *     probe-peer {peer, address, key}
 *       -> refused? one in flight; one start per MIN_PROBE_GAP_MS; a revoked key; no CA yet;
 *          a bad address -> counted by reason, answered {peer, error}
 *       -> TCP + TLS verifying `key`'s name (not timed), HELLO {role: probe} -> WELCOME
 *          (timed: handshake.ts probeRtt), bounded by PEER_PROBE_TIMEOUT_MS
 *       -> probe-result {peer, rttMs} | {peer, error}
 *
 * The bounds are the host's own, whatever the proxy asks: a proxy that asks too often makes
 * this host open at most one probe connection a second, one at a time. The peer's listener
 * answers a probe from anyone (as it does the proxy's reachability check): it learns nothing,
 * gives nothing (no ticket, no link), and the connection closes.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import { type Address, formatAddress, parseAddress } from "../config/types.ts";
import type { ProbeResult } from "../control/host_messages.ts";
import type { ProbePeer } from "../control/proxy_messages.ts";
import type { Transport } from "../link/transport.ts";
import { logger } from "../log.ts";
import { probeRtt } from "./handshake.ts";

/** Probes started closer together than this are refused. */
export const MIN_PROBE_GAP_MS = 1000;
/** A probe (connect, TLS, one round trip) gives up after this long. */
export const PEER_PROBE_TIMEOUT_MS = 5000;

/** Why this host refused to run a probe. */
export type PeerProbeRefusal = "busy" | "too often" | "revoked key" | "no CA yet" | "bad address";

/** What running probes needs. */
export interface PeerProbeDeps {
  /** Times one probe (handshake.ts probeRtt on the host's transport, with the proxy's CA). */
  probe(address: Address, options: { key: string; caPem: string; timeoutMs: number }): Promise<
    number
  >;
  /** The proxy's CA (PEM), "" before the first join. */
  caPem(): string;
  /** Whether `key` is on the proxy's deny list. */
  denied(key: string): boolean;
  clock: Pick<Clock, "monotonic">;
}

/**
 * The probes of a host built from its transport and clock (what agent/host.ts passes).
 *
 * @example
 * ```ts
 * import { peerProbes } from "./peer_probe.ts";
 * import { systemClock } from "../clock.ts";
 * import { tlsTransport } from "../link/transport.ts";
 * const probes = peerProbes({
 *   transport: tlsTransport, clock: systemClock, caPem: () => "", denied: () => false,
 * });
 * const answers: unknown[] = [];
 * const msg = { type: "probe-peer" as const, peer: "h2", key: "SHA256:k", address: "10.0.0.3:1" };
 * await probes.run(msg, (m) => answers.push(m));
 * if (probes.refused["no CA yet"] !== 1 || answers.length !== 1) throw new Error("refused");
 * ```
 */
export function peerProbes(
  init: { transport: Transport; clock: Clock; caPem(): string; denied(key: string): boolean },
): PeerProbes {
  return new PeerProbes({
    probe: (address, o) =>
      probeRtt(address, { ...o, transport: init.transport, clock: init.clock }),
    caPem: init.caPem,
    denied: init.denied,
    clock: init.clock,
  });
}

/** One host's probes of peers: at most one in flight, one started a second. */
export class PeerProbes {
  readonly #deps: PeerProbeDeps;
  #inFlight = false;
  #lastStart = -Infinity;
  /** Probes refused, by reason. */
  readonly refused: Record<PeerProbeRefusal, number> = {
    "busy": 0,
    "too often": 0,
    "revoked key": 0,
    "no CA yet": 0,
    "bad address": 0,
  };
  /** Probes timed. */
  answered = 0;
  /** Probes that found no answer (refused connection, bad certificate, timeout). */
  failed = 0;
  readonly #log = logger("fastpath");

  constructor(deps: PeerProbeDeps) {
    this.#deps = deps;
  }

  /**
   * Runs the probe `msg` asks for, or refuses it; `answer` gets the probe-result exactly once.
   * Never rejects: a failed probe is an answer.
   */
  async run(msg: ProbePeer, answer: (m: ProbeResult) => void): Promise<void> {
    const started = this.#deps.clock.monotonic();
    let address: Address | null = null;
    let why: PeerProbeRefusal | null = null;
    if (this.#inFlight) why = "busy";
    else if (started - this.#lastStart < MIN_PROBE_GAP_MS) why = "too often";
    else if (this.#deps.denied(msg.key)) why = "revoked key";
    else if (this.#deps.caPem() === "") why = "no CA yet";
    else {
      try {
        address = parseAddress(msg.address);
      } catch {
        why = "bad address";
      }
    }
    if (why !== null || address === null) {
      const reason = why ?? "bad address";
      this.refused[reason]++;
      answer({ type: "probe-result", peer: msg.peer, error: `refused: ${reason}` });
      return;
    }
    this.#inFlight = true;
    this.#lastStart = started;
    try {
      const rttMs = await this.#deps.probe(address, {
        key: msg.key,
        caPem: this.#deps.caPem(),
        timeoutMs: PEER_PROBE_TIMEOUT_MS,
      });
      this.answered++;
      answer({ type: "probe-result", peer: msg.peer, rttMs });
    } catch (e) {
      this.failed++;
      const error = `no answer at ${formatAddress(address)}: ${(e as Error).message}`.slice(0, 200);
      this.#log.debug("Probe of {peer} failed: {error}", { peer: msg.peer, error });
      answer({ type: "probe-result", peer: msg.peer, error });
    } finally {
      this.#inFlight = false;
    }
  }
}
