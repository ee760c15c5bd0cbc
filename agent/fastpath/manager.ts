/**
 * A host's fast-path links: it listens for peers with the certificate the proxy issued, dials
 * the peers the proxy names, and attaches each link to the switch as port `peer:NAME`. Every
 * link that comes up or goes down is reported to the proxy.
 *
 *     proxy: peer-expect(ticket) ──> acceptor's TicketBook
 *     proxy: peer-connect(address, ticket) ──> dialPeer ──TLS──> acceptPeer
 *     proxy: peer-punch to both (behind NATs) ──> punchTcp from both sides at once ──> TLS
 *            (roles from the proxy) ──> helloPeer / acceptPeer  (punch.ts)
 *     proxy: HELLO {role: probe} on the listener ──> WELCOME: the proxy knows we are reachable
 *            (listener.ts: the listener, its limits and the probes)
 *     both:  Link "peer:OTHER" attached to the switch; peer-up ──> proxy
 *     close / failure: Switch.detach -> rules to the peer stop matching at once (star again);
 *                      peer-down ──> proxy
 *     every PATH_RTT_CHECK_MS: the links' keepalive RTTs ──PathRttReport──> path-rtt ──> proxy,
 *                      only when one changed meaningfully (the proxy's underlay book)
 *
 * @module
 */

import { type Clock, systemClock } from "../clock.ts";
import type { Config } from "../config/schema.ts";
import { type Address, formatAddress, parseAddress } from "../config/types.ts";
import type {
  HostMessage,
  KeysRevoked,
  Listening,
  PeerClose,
  PeerConnect,
  PeerExpect,
  PeerMacs,
  PeerPunch,
  PeerVia,
} from "../control/messages.ts";
import type { Mac } from "../switch/ethernet.ts";
import type { PeerSourcePolicy } from "../switch/switch.ts";
import { PeerTrust } from "./peer_trust.ts";
import type { Handshake } from "../link/handshake.ts";
import { Link } from "../link/link.ts";
import { tlsTransport, type Transport } from "../link/transport.ts";
import { ProtocolError } from "../link/wire.ts";
import { logger } from "../log.ts";
import type { Switch } from "../switch/switch.ts";
import { peerPort } from "../switch/port_name.ts";
import { acceptPeer, dialPeer, helloPeer } from "./handshake.ts";
import { punchedTls, punchTcp } from "./punch.ts";
import { keyTlsName } from "../join/host_key.ts";
import { TicketBook } from "./tickets.ts";
import { FastPathListener } from "./listener.ts";
import { PATH_RTT_CHECK_MS, PathRttReport } from "../traffic/path_rtt.ts";

/** Tickets a host keeps waiting at most. */
export const MAX_TICKETS = 1024;

/** Messages from the proxy this manager handles. */
export type PeerInstruction =
  | PeerExpect
  | PeerConnect
  | PeerPunch
  | PeerMacs
  | KeysRevoked
  | PeerClose;

export { DEFAULT_FAST_PATH_LISTEN } from "./listener.ts";

/**
 * Host-side fast-path links, and the sources each peer may send on them (the switch asks
 * {@linkcode FastPathManager.allows} for every frame from a peer).
 */
export class FastPathManager implements PeerSourcePolicy {
  readonly #sw: Switch;
  readonly #self: string;
  readonly #config: Config;
  readonly #signal: AbortSignal;
  readonly #report: (msg: HostMessage) => void;
  readonly #book = new TicketBook({ max: MAX_TICKETS });
  readonly #links = new Map<string, Link>();
  /** How each link up came to be (said again to a restarted proxy). */
  readonly #via = new Map<string, PeerVia>();
  /** The proxy's word on peers: their keys, revoked keys, their VMs (peer_trust.ts). */
  readonly trust = new PeerTrust();
  /** What the proxy was told of the links' RTTs (path_rtt.ts). */
  readonly #rtts = new PathRttReport();
  readonly #listener: FastPathListener;
  #keyPem = "";
  #caPem = "";
  readonly #transport: Transport;
  readonly #clock: Clock;
  readonly #log = logger("fastpath");

  /** @param report sends a control message to the proxy (dropped while the uplink is down) */
  constructor(
    init: {
      sw: Switch;
      self: string;
      config: Config;
      signal: AbortSignal;
      transport?: Transport;
      clock?: Clock;
    },
    report: (msg: HostMessage) => void,
  ) {
    this.#transport = init.transport ?? tlsTransport;
    this.#clock = init.clock ?? systemClock;
    this.#sw = init.sw;
    this.#self = init.self;
    this.#config = init.config;
    this.#signal = init.signal;
    this.#report = report;
    this.#listener = new FastPathListener({
      ...init,
      transport: this.#transport,
      clock: this.#clock,
      book: this.#book,
      onPeer: (peer, hs) => this.#attach(peer, hs, "accepted"),
    });
    const rttChecks = this.#clock.every(PATH_RTT_CHECK_MS, () => this.#reportRtts());
    init.signal.addEventListener("abort", () => {
      rttChecks.cancel();
      for (const l of this.#links.values()) l.close("host shutting down");
    }, { once: true });
  }

  /** Peers with a link up. */
  peers(): string[] {
    return [...this.#links.keys()];
  }

  /** The certificate the fast-path listener presents (PEM), "" before the first join. */
  get certificatePem(): string {
    return this.#listener.certificatePem;
  }

  /** Where this host accepts fast paths, once listening. */
  get address(): Address | null {
    return this.#listener.address;
  }

  /** The link to `peer`, if up. */
  link(peer: string): Link | undefined {
    return this.#links.get(peer);
  }

  /**
   * Listens with the host's certificate; returns the address to advertise (`:PORT` when bound
   * to all interfaces). A new certificate replaces the listener on the same port.
   */
  listen(tls: { certPem: string; keyPem: string; caPem: string }): string {
    this.#caPem = tls.caPem;
    this.#keyPem = tls.keyPem;
    return this.#listener.listen(tls);
  }

  /** The `listening` message for `address`, with `--advertise` if given. */
  listeningMessage(address: string): Listening {
    return this.#listener.listeningMessage(address);
  }

  /** Reachability probes from the proxy answered so far. */
  get probes(): number {
    return this.#listener.probes;
  }

  /** Fast-path connections refused or dropped before their ticket was checked, by reason. */
  get refusals(): Readonly<Record<string, number>> {
    return this.#listener.refusals;
  }

  /** Whether the peer behind `port` may send frames from `src` (see PeerMacs). */
  allows(port: string, src: Mac): boolean {
    return this.trust.allows(port, src);
  }

  /** Carries out an instruction from the proxy. */
  handle(msg: PeerInstruction): void {
    switch (msg.type) {
      case "peer-macs":
        this.trust.onPeerMacs(msg);
        return;
      case "keys-revoked":
        for (const peer of this.trust.onRevoked(msg.keys)) {
          this.#links.get(peer)?.close("its key was revoked");
        }
        return;
      case "peer-expect":
        if (!this.trust.expectKey(msg.peer, msg.key)) return this.#revoked(msg.peer, msg.key);
        this.#book.expect(msg.ticket, msg.peer, Math.min(msg.ttlMs, 60_000), this.#clock.now());
        return;
      case "peer-connect": {
        if (!this.trust.expectKey(msg.peer, msg.key)) return this.#revoked(msg.peer, msg.key);
        let address: Address;
        try {
          address = parseAddress(msg.address);
        } catch (e) {
          this.#report({
            type: "peer-down",
            peer: msg.peer,
            reason: `bad address: ${(e as Error).message}`,
          });
          return;
        }
        this.#dial(msg.peer, msg.key, address, msg.ticket);
        return;
      }
      case "peer-punch":
        if (!this.trust.expectKey(msg.peer, msg.key)) return this.#revoked(msg.peer, msg.key);
        if (msg.role === "tls-server") {
          this.#book.expect(
            msg.ticket,
            msg.peer,
            Math.min(msg.ttlMs + 5_000, 60_000),
            this.#clock.now(),
          );
        }
        void this.#punch(msg);
        return;
      case "peer-close":
        this.#links.get(msg.peer)?.close(`proxy asked: ${msg.reason}`);
        return;
    }
  }

  /** Tells the proxy about every link that is up (after a re-join); their RTTs follow. */
  reannounce(): void {
    for (const peer of this.#links.keys()) {
      this.#report({ type: "peer-up", peer, via: this.#via.get(peer) });
    }
    this.#rtts.reset();
  }

  /** The fast paths' keepalive RTTs to the proxy, when one changed meaningfully. */
  #reportRtts(): void {
    const links = [...this.#links].map(([peer, l]) => [peer, l.stats().rttMs] as const);
    const msg = this.#rtts.check(links, this.#clock.now());
    if (msg) this.#report(msg);
  }

  /** A fast path with a revoked key is never set up: said to the proxy and the log. */
  #revoked(peer: string, key: string): void {
    this.#log.warn("Refused a fast path with {peer}: its key {key} is revoked", { peer, key });
    this.#report({ type: "peer-down", peer, reason: `key ${key} is revoked` });
  }

  async #dial(peer: string, key: string, address: Address, ticket: string): Promise<void> {
    try {
      const hs = await dialPeer(address, {
        self: this.#self,
        peer,
        key,
        ticket,
        caPem: this.#caPem,
        timeoutMs: this.#config.handshakeTimeout,
        dialTimeoutMs: this.#config.dialTimeout,
        transport: this.#transport,
        clock: this.#clock,
      });
      this.#attach(peer, hs, "dialed");
    } catch (e) {
      this.#log.warn("Cannot open a fast path to {peer} at {addr}: {error}", {
        peer,
        addr: formatAddress(address),
        error: (e as Error).message,
      });
      this.#report({ type: "peer-down", peer, reason: (e as Error).message.slice(0, 200) });
    }
  }

  /**
   * Both hosts behind NATs: connect to the peer's outside address from the port the proxy
   * chose while the peer does the same (punch.ts), then TLS in the proxy's roles and the
   * fast-path handshake over it.
   */
  async #punch(msg: PeerPunch): Promise<void> {
    const started = this.#clock.monotonic();
    try {
      const remote = parseAddress(msg.address);
      const socket = await punchTcp({
        remote,
        localPort: msg.localPort,
        timeoutMs: msg.ttlMs,
        signal: this.#signal,
      });
      const conn = await punchedTls(socket, {
        role: msg.role,
        remote,
        certPem: this.#listener.certificatePem,
        keyPem: this.#keyPem,
        serverName: keyTlsName(msg.key),
        caPem: this.#caPem,
        timeoutMs: this.#config.handshakeTimeout,
      });
      if (msg.role === "tls-client") {
        const hs = await helloPeer(conn, remote, {
          self: this.#self,
          peer: msg.peer,
          ticket: msg.ticket,
          timeoutMs: this.#config.handshakeTimeout,
          clock: this.#clock,
        });
        this.#attach(msg.peer, hs, "punched");
      } else {
        const accepted = await acceptPeer(conn, {
          self: this.#self,
          book: this.#book,
          timeoutMs: this.#config.handshakeTimeout,
          ticketWaitMs: 2000,
          clock: this.#clock,
        }).catch((e) => {
          conn.close();
          throw e;
        });
        if ("probe" in accepted || accepted.peer !== msg.peer) {
          conn.close();
          throw new Error(`Cannot open a punched fast path: the other end is not ${msg.peer}`);
        }
        this.#attach(msg.peer, accepted.handshake, "punched");
      }
      this.#log.info("Hole punched to {peer} in {ms} ms", {
        peer: msg.peer,
        ms: Math.round(this.#clock.monotonic() - started),
      });
    } catch (e) {
      this.#log.warn("Cannot punch a fast path to {peer}: {error}", {
        peer: msg.peer,
        error: (e as Error).message,
      });
      this.#report({
        type: "peer-down",
        peer: msg.peer,
        reason: (e as Error).message.slice(0, 200),
      });
    }
  }

  #attach(peer: string, hs: Handshake, how: PeerVia): void {
    if (this.#signal.aborted) {
      hs.conn.close();
      return;
    }
    const name = peerPort(peer);
    this.#links.get(peer)?.close("replaced by a new fast path");
    const link = new Link(
      { name, kind: "peer", peer, conn: hs.conn, reader: hs.reader },
      {
        onFrame: (packet) => this.#sw.forward(packet, name, this.#clock.now()),
        onControl: () => {
          throw new ProtocolError("Cannot accept control messages on a fast path");
        },
        onClose: (reason, l) => {
          if (this.#links.get(peer) !== l) return;
          this.#links.delete(peer);
          this.#via.delete(peer);
          this.#sw.detach(name);
          this.#log.info("Fast path to {peer} closed: {reason}", { peer, reason });
          if (!this.#signal.aborted) this.#report({ type: "peer-down", peer, reason });
        },
      },
      {
        queueBytes: this.#config.queueBytes,
        keepaliveMs: Math.min(this.#config.keepalive, 250),
        deadAfterMs: Math.min(this.#config.deadAfter, 1000),
        clock: this.#clock,
      },
    );
    this.#links.set(peer, link);
    this.#via.set(peer, how);
    this.#sw.attach(link);
    this.#log.info("Fast path to {peer} is up ({how})", { peer, how });
    this.#report({ type: "peer-up", peer, via: how });
    link.run(this.#signal);
  }
}
