/**
 * A host's uplink to the proxy: the star link, kept up. It discovers the proxy's CA (checked
 * against the token's hash), joins with the token or, once admitted, with the host's own
 * rejoin credential, runs the link, and reconnects with exponential backoff and jitter when
 * it drops. A refusal that retrying cannot fix (a wrong token, a CA that does not match) stops
 * the host with the reason.
 *
 *     discoverCa ──> joinProxy (token | rejoin secret) ──> Link "proxy" ──run──> closed
 *          ^                                                                      │
 *          └──────────────── backoff (200 ms doubling, capped, jittered) <─────────┘
 *
 * @module
 */

import type { Clock } from "./clock.ts";
import type { Config } from "./config/schema.ts";
import { formatAddress } from "./config/types.ts";
import { parseProxyMessage, type ProxyMessage } from "./control/messages.ts";
import { CaMismatch, discoverCa } from "./join/discovery.ts";
import type { HostState } from "./join/host_state.ts";
import { joinProxy, JoinRefused, NameTaken, RejoinRefused, type Welcome } from "./join/join.ts";
import type { JoinToken } from "./join/token.ts";
import type { Handshake } from "./link/handshake.ts";
import { Link } from "./link/link.ts";
import type { Transport } from "./link/transport.ts";
import { logger } from "./log.ts";
import { UPLINK_PORT } from "./switch/port_name.ts";
import type { Switch } from "./switch/switch.ts";

/**
 * Exponential backoff with full jitter, capped: attempt 0 -> up to 200 ms.
 *
 * @example
 * ```ts
 * import { backoffMs } from "./uplink.ts";
 * if (backoffMs(0, 10_000, () => 1) !== 200 || backoffMs(30, 10_000, () => 0) !== 5000) {
 *   throw new Error();
 * }
 * ```
 */
export function backoffMs(attempt: number, capMs: number, random = Math.random): number {
  const ceiling = Math.min(capMs, 200 * 2 ** Math.min(attempt, 20));
  return Math.round(ceiling / 2 + random() * ceiling / 2);
}

/** Who the host is and what it acts on. */
export interface UplinkInit {
  config: Config;
  name: string;
  token: JoinToken;
  /** The host's key and stored rejoin credential (its --state-dir). */
  state: HostState;
  /** Whether the host's device takes superframes (told to the proxy). */
  offload: boolean;
  sw: Switch;
  /** How to reach the proxy, and whose time to wait on. */
  transport: Transport;
  clock: Clock;
  /** A message from the proxy, already validated. */
  onMessage(msg: ProxyMessage, link: Link): void;
  /** A message from the proxy that was refused (the link stays). */
  onBadMessage(e: Error): void;
  /** The link is up and attached; `caPem` is the proxy's CA. */
  onUp(link: Link, welcome: Welcome, caPem: string): void;
}

/** The star link of a host, reconnected for as long as the host runs. */
export class Uplink {
  readonly #init: UplinkInit;
  readonly #log = logger("host");
  #link: Link | null = null;
  #joins = 0;
  #fatal: string | null = null;
  #reportEveryMs: number;
  #markReady!: () => void;
  /** Resolves once the first join succeeded. */
  readonly ready = new Promise<void>((r) => this.#markReady = r);

  constructor(init: UplinkInit) {
    this.#init = init;
    this.#reportEveryMs = init.config.updateInterval;
  }

  /** The current link, or null while (re)connecting. */
  current(): Link | null {
    return this.#link;
  }

  /** Successful joins so far (1 after the first, +1 per reconnect). */
  get joins(): number {
    return this.#joins;
  }

  /** Why the uplink gave up for good (a refused token, a CA mismatch), or null. */
  get fatal(): string | null {
    return this.#fatal;
  }

  /** How often to report traffic: the proxy's setting, so that all reports share one clock. */
  get reportEveryMs(): number {
    return this.#reportEveryMs;
  }

  /** Keeps the link up until `signal` aborts; calls `giveUp` after a fatal refusal. */
  async run(signal: AbortSignal, giveUp: () => void): Promise<void> {
    const { config, token, state, name, clock } = this.#init;
    const proxy = config.join!;
    let caPem: string | null = null;
    // Once admitted, the host comes back with its own credential, not the join token, also
    // after a restart (the credential is kept in its state dir).
    let rejoinSecret: Uint8Array | null = state.rejoinFor(token.caHash, name);
    for (let attempt = 0; !signal.aborted;) {
      try {
        caPem ??= await discoverCa(proxy, token.caHash, {
          timeoutMs: config.joinTimeout,
          signal,
          transport: this.#init.transport,
          clock,
        });
        const { handshake, welcome } = await this.#join(caPem, rejoinSecret);
        if (welcome.rejoin) {
          rejoinSecret = Uint8Array.fromBase64(welcome.rejoin, { alphabet: "base64url" });
          await this.#keep({ proxyCaHash: token.caHash, name, secret: welcome.rejoin });
        }
        attempt = 0;
        await this.#serve(handshake, welcome, caPem, signal);
      } catch (e) {
        if (e instanceof RejoinRefused) {
          this.#log.warn("{error}; joining with the token instead", { error: e.message });
          rejoinSecret = null;
          await this.#keep(null);
          continue;
        }
        if (e instanceof JoinRefused || e instanceof CaMismatch) {
          this.#fatal = e.message;
          this.#log.error("{error}", { error: e.message });
          giveUp();
          return;
        }
        if (signal.aborted) return;
        await clock.sleep(this.#retryWait(e as Error, attempt++), signal);
      }
    }
  }

  /** Joins with the token, or with the rejoin secret when the host has one. */
  #join(caPem: string, rejoinSecret: Uint8Array | null) {
    const { config, token, state, name, transport, clock } = this.#init;
    return joinProxy(config.join!, {
      token,
      rejoinSecret,
      caPem,
      hello: { name, offload: this.#init.offload, vmSlots: config.vmSlots },
      spkiB64: state.key.spkiB64,
      // Deno's TLS finishes at the proxy's accept, before the connection waits for its slot:
      // the wait is in the message exchange, which gets the whole join timeout.
      timeoutMs: config.joinTimeout,
      dialTimeoutMs: config.joinTimeout,
      transport,
      clock,
    });
  }

  /** Runs the joined link until it closes (or `signal` aborts). */
  async #serve(hs: Handshake, welcome: Welcome, caPem: string, signal: AbortSignal) {
    const { config } = this.#init;
    const interval = welcome.settings.updateIntervalMs;
    this.#reportEveryMs = typeof interval === "number" && interval >= 50 && interval <= 3_600_000
      ? interval
      : config.updateInterval;
    const link = this.#open(hs);
    this.#joins++;
    this.#init.onUp(link, welcome, caPem);
    this.#log.info("Joined proxy {proxy} as {name}", {
      proxy: formatAddress(config.join!),
      name: this.#init.name,
    });
    this.#markReady();
    await link.run(signal);
    this.#init.sw.detach(UPLINK_PORT);
    this.#link = null;
    if (!signal.aborted) {
      this.#log.warn("Lost proxy link: {reason}; reconnecting", { reason: link.closeReason });
    }
  }

  /** How long to wait after failure `e` (attempt number `attempt`), said in the log. */
  #retryWait(e: Error, attempt: number): number {
    const wait = backoffMs(attempt, this.#init.config.reconnectMax);
    if (e instanceof NameTaken) {
      // The operator may free the name; until then, ask again now and then.
      this.#log.warn("{error}; asking again in {ms} ms", { error: e.message, ms: wait });
    } else {
      this.#log.warn("Cannot reach proxy {proxy}: {error}; retrying in {ms} ms", {
        proxy: formatAddress(this.#init.config.join!),
        error: e.message,
        ms: wait,
      });
    }
    return wait;
  }

  /** Keeps the rejoin credential in the state dir; a failure costs only the next restart. */
  async #keep(rejoin: Parameters<HostState["setRejoin"]>[0]): Promise<void> {
    await this.#init.state.setRejoin(rejoin).catch((e) =>
      this.#log.warn("Cannot keep the rejoin credential: {error}", { error: (e as Error).message })
    );
  }

  /** The star link over a joined connection, attached to the switch. */
  #open(hs: Handshake): Link {
    const { config, sw, clock } = this.#init;
    const link: Link = new Link(
      { name: UPLINK_PORT, kind: "uplink", peer: "proxy", conn: hs.conn, reader: hs.reader },
      {
        onFrame: (packet) => sw.forward(packet, UPLINK_PORT, clock.now()),
        onControl: (raw) => {
          let msg: ProxyMessage;
          try {
            msg = parseProxyMessage(raw);
          } catch (e) {
            // A bad instruction is refused alone; the uplink stays.
            return this.#init.onBadMessage(e as Error);
          }
          this.#init.onMessage(msg, link);
        },
      },
      {
        queueBytes: config.queueBytes,
        keepaliveMs: config.keepalive,
        deadAfterMs: config.deadAfter,
        keepaliveIdleMs: config.keepaliveIdle,
        clock,
      },
    );
    this.#link = link;
    sw.attach(link);
    return link;
  }
}
