/**
 * A host's fast-path links: it listens for peers with the certificate the proxy issued, dials
 * the peers the proxy names, and attaches each link to the switch as port `peer:NAME`. Every
 * link that comes up or goes down is reported to the proxy.
 *
 *     proxy: peer-expect(ticket) ──> acceptor's TicketBook
 *     proxy: peer-connect(address, ticket) ──> dialPeer ──TLS──> acceptPeer
 *     both:  Link "peer:OTHER" attached to the switch; peer-up ──> proxy
 *     close / failure: Switch.detach -> rules to the peer stop matching at once (star again);
 *                      peer-down ──> proxy
 *
 * @module
 */

import { type Clock, systemClock } from "../clock.ts";
import type { Config } from "../config/schema.ts";
import { type Address, formatAddress, parseAddress } from "../config/types.ts";
import type {
  HostMessage,
  KeysRevoked,
  PeerClose,
  PeerConnect,
  PeerExpect,
  PeerMacs,
} from "../control/messages.ts";
import type { Mac } from "../switch/ethernet.ts";
import type { PeerSourcePolicy } from "../switch/switch.ts";
import { PeerTrust } from "./peer_trust.ts";
import type { Handshake } from "../link/handshake.ts";
import { Link } from "../link/link.ts";
import { type Listener, tlsTransport, type Transport } from "../link/transport.ts";
import { ProtocolError } from "../link/wire.ts";
import { logger } from "../log.ts";
import type { Switch } from "../switch/switch.ts";
import { peerPort } from "../switch/port_name.ts";
import { acceptPeer, dialPeer } from "./handshake.ts";
import { TicketBook } from "./tickets.ts";
import { Acceptor } from "../link/acceptor.ts";
import { LogLimit } from "../log_limit.ts";
import { explainListenError } from "../listen_error.ts";

/** Tickets a host keeps waiting at most. */
export const MAX_TICKETS = 1024;

/** Messages from the proxy this manager handles. */
export type PeerInstruction = PeerExpect | PeerConnect | PeerMacs | KeysRevoked | PeerClose;

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
  /** The proxy's word on peers: their keys, revoked keys, their VMs (peer_trust.ts). */
  readonly trust = new PeerTrust();
  /** The certificate the listener presents now. */
  #certPem = "";
  #caPem = "";
  #listener: Listener | null = null;
  readonly #transport: Transport;
  readonly #clock: Clock;
  readonly #log = logger("fastpath");
  readonly #acceptor: Acceptor;
  readonly #refusalLog = new LogLimit(60_000);

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
    this.#acceptor = new Acceptor(init.config);
    init.signal.addEventListener("abort", () => {
      try {
        this.#listener?.close();
      } catch { /* closed */ }
      for (const l of this.#links.values()) l.close("host shutting down");
    }, { once: true });
  }

  /** Peers with a link up. */
  peers(): string[] {
    return [...this.#links.keys()];
  }

  /** The certificate the fast-path listener presents (PEM), "" before the first join. */
  get certificatePem(): string {
    return this.#certPem;
  }

  /** Where this host accepts fast paths, once listening. */
  get address(): Address | null {
    return this.#listener?.addr ?? null;
  }

  /** The link to `peer`, if up. */
  link(peer: string): Link | undefined {
    return this.#links.get(peer);
  }

  /**
   * Listens with the host's certificate; returns the address to advertise: `:PORT` when bound
   * to all interfaces (the proxy pairs it with the address we joined from). A new certificate
   * (a rejoin, a renewal) replaces the listener on the same port; links already up keep
   * running, since they no longer depend on it.
   */
  listen(tls: { certPem: string; keyPem: string; caPem: string }): string {
    this.#caPem = tls.caPem;
    if (this.#listener && this.#certPem !== tls.certPem) {
      const old = this.#listener;
      this.#certPem = tls.certPem;
      void this.#relisten(old, tls);
      return advertised(old.addr);
    }
    return advertised(
      (this.#listener ??
        this.#open(this.#config.listen ?? { hostname: "0.0.0.0", port: 0 }, tls)).addr,
    );
  }

  /**
   * Replaces `old` by a listener with the new certificate on the same port (the address the
   * proxy hands peers stays right). The port is free only once the old listener's pending
   * accept has been cancelled, a turn of the event loop after close, so binding is retried.
   */
  async #relisten(old: Listener, tls: { certPem: string; keyPem: string }): Promise<void> {
    const want = {
      hostname: this.#config.listen?.hostname ?? old.addr.hostname,
      port: old.addr.port,
    };
    try {
      old.close();
    } catch { /* closed */ }
    for (let attempt = 0; attempt < 200 && !this.#signal.aborted; attempt++) {
      if (this.#certPem !== tls.certPem) return; // a newer certificate took over
      try {
        this.#open(want, tls);
        return;
      } catch (e) {
        if (!((e as Error).cause instanceof Deno.errors.AddrInUse)) {
          this.#log.error("Cannot listen for fast paths with the new certificate: {error}", {
            error: (e as Error).message,
          });
          return;
        }
      }
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  #open(want: Address, tls: { certPem: string; keyPem: string }): Listener {
    let listener: Listener;
    try {
      listener = this.#transport.listen(want, tls);
    } catch (e) {
      throw explainListenError(e, want, "listen");
    }
    this.#listener = listener;
    this.#certPem = tls.certPem;
    this.#acceptLoop(listener);
    return listener;
  }

  /** Fast-path connections refused or dropped before their ticket was checked, by reason. */
  get refusals(): Readonly<Record<string, number>> {
    return this.#acceptor.refusals;
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
      case "peer-close":
        this.#links.get(msg.peer)?.close(`proxy asked: ${msg.reason}`);
        return;
    }
  }

  /** Tells the proxy about every link that is up (after a re-join). */
  reannounce(): void {
    for (const peer of this.#links.keys()) this.#report({ type: "peer-up", peer });
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
        transport: this.#transport,
        clock: this.#clock,
      });
      this.#attach(peer, hs);
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
   * Accepts fast-path connections within the same limits as the proxy's join listener: this
   * listener is on every host's public side, and nobody is authenticated before the ticket.
   */
  async #acceptLoop(listener: Listener): Promise<void> {
    await this.#acceptor.run(listener, {
      sourceOf: (conn) => conn.remoteAddr.hostname,
      onRefused: (source, why) => this.#refused(source, why),
      serve: async (conn, handshakeDone) => {
        let accepted;
        try {
          accepted = await acceptPeer(conn, {
            self: this.#self,
            book: this.#book,
            timeoutMs: this.#config.handshakeTimeout,
            ticketWaitMs: 2000,
            clock: this.#clock,
          });
        } catch (e) {
          this.#acceptor.count("refused");
          this.#refused(conn.remoteAddr.hostname, (e as Error).message);
          try {
            conn.close();
          } catch { /* closed */ }
          return;
        } finally {
          handshakeDone();
        }
        this.#attach(accepted.peer, accepted.handshake);
      },
      onAcceptError: (e) =>
        this.#log.error("Cannot accept a fast-path connection: {error}", { error: String(e) }),
      onServeError: (e) =>
        this.#log.error("Fast-path connection failed: {error}", { error: String(e) }),
    }, this.#signal);
  }

  /** Logs a refusal at most once per source and minute; all are counted. */
  #refused(source: string, why: string): void {
    if (this.#refusalLog.shouldLog(source, this.#clock.now())) {
      this.#log.warn(
        "Refused a fast-path connection from {source}: {why} (more for 60 s: counted only)",
        {
          source,
          why,
        },
      );
    }
  }

  #attach(peer: string, hs: Handshake): void {
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
    this.#sw.attach(link);
    this.#log.info("Fast path to {peer} is up", { peer });
    this.#report({ type: "peer-up", peer });
    link.run(this.#signal);
  }
}

/** The address to advertise for a listener: `:PORT` when bound to all interfaces. */
function advertised(bound: Address): string {
  const wildcard = bound.hostname === "0.0.0.0" || bound.hostname === "::";
  return wildcard ? `:${bound.port}` : formatAddress(bound);
}
