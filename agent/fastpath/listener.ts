/**
 * A host's fast-path listener: it accepts peers with the certificate the proxy issued, within
 * the same limits as the proxy's join listener (it is on every host's public side, and nobody
 * is authenticated before the ticket), and answers the proxy's reachability probes.
 *
 *     listen: --listen, else [::]:0 (both families; 0.0.0.0 where IPv6 is off)
 *     accept -> acceptPeer: ticket -> onPeer(peer, handshake) | probe -> WELCOME, closed
 *     a new certificate (rejoin, renewal) -> a new listener on the same port
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import type { Config } from "../config/schema.ts";
import { type Address, formatAddress } from "../config/types.ts";
import type { Listening } from "../control/messages.ts";
import type { Handshake } from "../link/handshake.ts";
import { Acceptor } from "../link/acceptor.ts";
import { listenBothFamilies, type Listener, type Transport, unmapIPv4 } from "../link/transport.ts";
import { explainListenError } from "../listen_error.ts";
import { logger } from "../log.ts";
import { LogLimit } from "../log_limit.ts";
import { acceptPeer } from "./handshake.ts";
import type { TicketBook } from "./tickets.ts";

/** Where a host listens for fast paths when `--listen` is not given: both families, any port. */
export const DEFAULT_FAST_PATH_LISTEN: Address = { hostname: "::", port: 0 };

/** The certificate and key a listener presents. */
export interface ListenerTls {
  certPem: string;
  keyPem: string;
}

/** What a listener works with. */
export interface FastPathListenerInit {
  self: string;
  config: Config;
  signal: AbortSignal;
  transport: Transport;
  clock: Clock;
  /** The tickets peers may present (the proxy's peer-expect and peer-punch fill it). */
  book: TicketBook;
  /** A peer presented a valid ticket: its link may start. */
  onPeer(peer: string, hs: Handshake): void;
}

/** The listener and what it accepts peers by. */
export class FastPathListener {
  readonly #init: FastPathListenerInit;
  readonly #acceptor: Acceptor;
  readonly #refusalLog = new LogLimit(60_000);
  readonly #log = logger("fastpath");
  #listener: Listener | null = null;
  #certPem = "";
  #probes = 0;

  constructor(init: FastPathListenerInit) {
    this.#init = init;
    this.#acceptor = new Acceptor(init.config);
    init.signal.addEventListener("abort", () => {
      try {
        this.#listener?.close();
      } catch { /* closed */ }
    }, { once: true });
  }

  /** Where it listens, once listening. */
  get address(): Address | null {
    return this.#listener?.addr ?? null;
  }

  /** The certificate it presents (PEM), "" before the first listen. */
  get certificatePem(): string {
    return this.#certPem;
  }

  /** Reachability probes from the proxy answered so far. */
  get probes(): number {
    return this.#probes;
  }

  /** Connections refused or dropped before their ticket was checked, by reason. */
  get refusals(): Readonly<Record<string, number>> {
    return this.#acceptor.refusals;
  }

  /**
   * Listens with `tls`; returns the address to advertise: `:PORT` when bound to all interfaces
   * (the proxy pairs it with the address we joined from). A new certificate replaces the
   * listener on the same port; links already up keep running, since they no longer need it.
   */
  listen(tls: ListenerTls): string {
    if (this.#listener && this.#certPem !== tls.certPem) {
      const old = this.#listener;
      this.#certPem = tls.certPem;
      void this.#relisten(old, tls);
      return advertised(old.addr);
    }
    return advertised((this.#listener ?? this.#openDefault(tls)).addr);
  }

  /**
   * The `listening` message for the address {@linkcode listen} returned: with the public
   * address of `--advertise`, which the proxy checks before anyone is sent there.
   */
  listeningMessage(address: string): Listening {
    const a = this.#init.config.advertise;
    return a
      ? { type: "listening", address, advertise: formatAddress(a) }
      : { type: "listening", address };
  }

  /** `--listen`, or both address families on any port; IPv4 alone where IPv6 is off. */
  #openDefault(tls: ListenerTls): Listener {
    const { config, transport } = this.#init;
    if (config.listen) return this.#open(config.listen, tls);
    let opened;
    try {
      opened = listenBothFamilies(transport, 0, tls);
    } catch (e) {
      throw explainListenError(e, DEFAULT_FAST_PATH_LISTEN, "listen");
    }
    if (opened.fellBack) {
      this.#log.info("Listening for fast paths on IPv4 only: {error}", { error: opened.fellBack });
    }
    return this.#adopt(opened.listener, tls);
  }

  /**
   * Replaces `old` by a listener with the new certificate on the same port (the address the
   * proxy hands peers stays right). The port is free only once the old listener's pending
   * accept has been cancelled, a turn of the event loop after close, so binding is retried.
   */
  async #relisten(old: Listener, tls: ListenerTls): Promise<void> {
    const want = {
      hostname: this.#init.config.listen?.hostname ?? old.addr.hostname,
      port: old.addr.port,
    };
    try {
      old.close();
    } catch { /* closed */ }
    for (let attempt = 0; attempt < 200 && !this.#init.signal.aborted; attempt++) {
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

  #open(want: Address, tls: ListenerTls): Listener {
    let listener: Listener;
    try {
      listener = this.#init.transport.listen(want, tls);
    } catch (e) {
      throw explainListenError(e, want, "listen");
    }
    return this.#adopt(listener, tls);
  }

  /** Makes `listener` the fast-path listener and starts accepting on it. */
  #adopt(listener: Listener, tls: ListenerTls): Listener {
    this.#listener = listener;
    this.#certPem = tls.certPem;
    void this.#acceptLoop(listener);
    return listener;
  }

  async #acceptLoop(listener: Listener): Promise<void> {
    const { self, book, config, clock } = this.#init;
    await this.#acceptor.run(listener, {
      sourceOf: (conn) => unmapIPv4(conn.remoteAddr.hostname),
      onRefused: (source, why) => this.#refused(source, why),
      serve: async (conn, handshakeDone) => {
        let accepted;
        try {
          accepted = await acceptPeer(conn, {
            self,
            book,
            timeoutMs: config.handshakeTimeout,
            ticketWaitMs: 2000,
            clock,
          });
        } catch (e) {
          this.#acceptor.count("refused");
          this.#refused(unmapIPv4(conn.remoteAddr.hostname), (e as Error).message);
          closeQuietly(conn);
          return;
        } finally {
          handshakeDone();
        }
        if ("probe" in accepted) {
          // The proxy checked that we can be reached here; nothing more on this connection.
          this.#probes++;
          closeQuietly(conn);
          return;
        }
        this.#init.onPeer(accepted.peer, accepted.handshake);
      },
      onAcceptError: (e) =>
        this.#log.error("Cannot accept a fast-path connection: {error}", { error: String(e) }),
      onServeError: (e) =>
        this.#log.error("Fast-path connection failed: {error}", { error: String(e) }),
    }, this.#init.signal);
  }

  /** Logs a refusal at most once per source and minute; all are counted. */
  #refused(source: string, why: string): void {
    if (this.#refusalLog.shouldLog(source, this.#init.clock.now())) {
      this.#log.warn(
        "Refused a fast-path connection from {source}: {why} (more for 60 s: counted only)",
        { source, why },
      );
    }
  }
}

function closeQuietly(conn: { close(): void }): void {
  try {
    conn.close();
  } catch { /* closed */ }
}

/** The address to advertise for a listener: `:PORT` when bound to all interfaces. */
function advertised(bound: Address): string {
  const wildcard = bound.hostname === "0.0.0.0" || bound.hostname === "::";
  return wildcard ? `:${bound.port}` : formatAddress(bound);
}
