/**
 * How links reach each other: listen and dial, returning a byte stream. Everything above this
 * (handshakes, links, the acceptor's limits) sees only {@linkcode Conn}, so the same proxy
 * and hosts run over real TLS (this file's {@linkcode tlsTransport}) or over the in-memory
 * network of memory_transport.ts, where a test runs a whole overlay without sockets.
 *
 *     dial(address, {serverName, caPem}) ──> TCP + TCP_NODELAY ──> TLS, peer verified ──> NetConn
 *     listen(address, {certPem, keyPem}) ──> accept() ──> TCP_NODELAY ──> NetConn (TLS
 *                                                             finishes on the first read)
 *
 * Verification is the transport's job, in both implementations: a dial names the TLS name it
 * expects and the CA that must have issued it, and fails with {@linkcode CertificateRejected}
 * otherwise. The one exception is CA discovery (`caPem: null`), whose bytes are checked
 * against the hash pinned in the join token instead.
 *
 * @module
 */

import { noDelayOnAccepted, shutdownSocket, unreadBytes } from "../../ffi/socket.ts";
import { type Address, formatAddress } from "../config/types.ts";
import { logger } from "../log.ts";
import { nodeTlsConn } from "./node_tls_conn.ts";
import { withTimeout } from "./with_timeout.ts";

/** A byte stream: what handshakes and links read and write. `Deno.TlsConn` fits. */
export interface Conn {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  close(): void;
  /**
   * Bytes the peer sent that the kernel holds and this process has not read yet; -1 or
   * absent: unknown. A link asks before it calls a peer silent (see link.ts).
   */
  unreadBytes?(): number;
}

/** A stream from a transport: also says where the other end is. */
export interface NetConn extends Conn {
  /** The other end's address, as this side sees it (after NAT, if any). */
  readonly remoteAddr: Address;
}

/** A bound listener. `Deno.TlsListener` fits. */
export interface Listener {
  /** Where it listens (with the real port when 0 was asked for). */
  readonly addr: Address;
  /** The next connection; rejects with `Deno.errors.BadResource` once closed. */
  accept(): Promise<NetConn>;
  close(): void;
}

/** The certificate and key a listener presents. */
export interface ServerIdentity {
  certPem: string;
  keyPem: string;
}

/** What a dial verifies. */
export interface DialOptions {
  /** The name the peer's certificate must carry (e.g. `proxy.vnet`, `h2.host.vnet`). */
  serverName: string;
  /** The CA that must have issued it; null only for CA discovery (see the module doc). */
  caPem: string | null;
  /**
   * Bound on connecting, and then on the TLS handshake (default
   * {@linkcode DEFAULT_DIAL_TIMEOUT_MS} each): a SYN that a firewall or NAT drops would
   * otherwise wait for the kernel's retries, about 127 s. The handshake gets its own bound:
   * a peer that takes long to accept (a proxy in a join storm) has already spent a TLS
   * handshake on a connection given up once it answers, while the SYN retries before cost it
   * nothing.
   */
  timeoutMs?: number;
}

/** How long a dial may take when its caller sets no bound. */
export const DEFAULT_DIAL_TIMEOUT_MS = 10_000;

/** A dial did not connect (or finish TLS) within its bound. */
export class DialTimeout extends Error {
  override name = "DialTimeout";
}

/**
 * An address as people and peers should see it: an IPv4 peer of a dual-stack (`::`) listener
 * appears as `::ffff:a.b.c.d`, which is the IPv4 address `a.b.c.d`.
 *
 * @example
 * ```ts
 * import { unmapIPv4 } from "./transport.ts";
 * if (unmapIPv4("::ffff:10.0.0.2") !== "10.0.0.2") throw new Error("mapped");
 * if (unmapIPv4("2001:db8::1") !== "2001:db8::1") throw new Error("v6 kept");
 * ```
 */
export function unmapIPv4(hostname: string): string {
  const m = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(hostname);
  return m ? m[1] : hostname;
}

/** Listen and dial. */
export interface Transport {
  /** @throws as `Deno.listenTls` does (`AddrInUse`, `PermissionDenied`...). */
  listen(address: Address, identity: ServerIdentity): Listener;
  /** @throws {CertificateRejected} when the peer's certificate fails verification. */
  dial(address: Address, options: DialOptions): Promise<NetConn>;
}

/**
 * Listens on `port` on both address families (`::`, which takes IPv4 too where the kernel
 * allows, Linux's default); on IPv4 alone where IPv6 is off. Returns the listener and, when
 * it fell back, why.
 *
 * @throws what listening on 0.0.0.0 throws (`AddrInUse`...), when both fail.
 */
export function listenBothFamilies(
  transport: Transport,
  port: number,
  identity: ServerIdentity,
): { listener: Listener; fellBack: string | null } {
  try {
    return { listener: transport.listen({ hostname: "::", port }, identity), fellBack: null };
  } catch (e) {
    if (e instanceof Deno.errors.AddrInUse) throw e;
    const listener = transport.listen({ hostname: "0.0.0.0", port }, identity);
    return { listener, fellBack: (e as Error).message };
  }
}

/**
 * The peer's certificate is not issued by the expected CA for the expected name: someone is
 * in the middle, or the peer's state was replaced. Retrying does not help.
 */
export class CertificateRejected extends Error {
  override name = "CertificateRejected";
}

/** rustls' words for a certificate it refused. */
const CERTIFICATE_ERROR = /certificate|UnknownIssuer|BadCertificate|NotValidForName/i;

/**
 * TLS over TCP, as the agent runs: Deno's TLS (rustls) for everything verified, `node:tls`
 * for the one unverified exchange, CA discovery (Deno's TLS cannot skip verification).
 *
 * @example A host dials a listener that presents a certificate from the proxy's CA
 * ```ts
 * import { tlsTransport } from "./transport.ts";
 * import { loadOrCreatePki } from "../../proxy/pki/ca.ts";
 * const dir = await Deno.makeTempDir();
 * const pki = await loadOrCreatePki(dir);
 * const listener = tlsTransport.listen({ hostname: "127.0.0.1", port: 0 }, {
 *   certPem: pki.proxyCertPem,
 *   keyPem: pki.proxyKeyPem,
 * });
 * const served = listener.accept().then(async (c) => {
 *   await c.write(new TextEncoder().encode("hi"));
 *   c.close();
 * });
 * const conn = await tlsTransport.dial(listener.addr, {
 *   serverName: "proxy.vnet",
 *   caPem: pki.caPem,
 * });
 * const got = new Uint8Array(2);
 * await conn.read(got);
 * conn.close();
 * await served;
 * listener.close();
 * await Deno.remove(dir, { recursive: true });
 * if (new TextDecoder().decode(got) !== "hi") throw new Error("not the listener's bytes");
 * ```
 */
export const tlsTransport: Transport = {
  listen(address, identity) {
    const listener = Deno.listenTls({
      hostname: address.hostname,
      port: address.port,
      cert: identity.certPem,
      key: identity.keyPem,
    });
    const addr = listener.addr;
    return {
      addr: { hostname: addr.hostname, port: addr.port },
      async accept() {
        const conn = await listener.accept();
        // Deno accepts with Nagle on and has no setNoDelay for TLS: frames must not wait
        // for ACKs (see ffi/socket.ts).
        const { fd, error } = noDelayOnAccepted(conn);
        if (error) {
          logger("link").warn("Cannot set TCP_NODELAY for {from}: {error}", {
            from: formatAddress(conn.remoteAddr),
            error,
          });
        }
        return closedHard(conn, fd);
      },
      close: () => listener.close(),
    };
  },

  async dial(address, options) {
    const timeoutMs = options.timeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS;
    const timedOut = () =>
      new DialTimeout(
        `Cannot connect to ${formatAddress(address)}: no answer within ${timeoutMs} ms ` +
          "(a firewall or NAT may drop the connection)",
      );
    if (options.caPem === null) {
      return await nodeTlsConn(address, options.serverName, timeoutMs, timedOut);
    }
    let tcp: Deno.TcpConn;
    try {
      // Deno.connect honours a signal; Deno.connectTls does not (so TLS is started after).
      tcp = await Deno.connect({
        hostname: address.hostname,
        port: address.port,
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (e) {
      if (e instanceof DOMException && (e.name === "TimeoutError" || e.name === "AbortError")) {
        throw timedOut();
      }
      throw e;
    }
    try {
      tcp.setNoDelay(true);
      const tls = await Deno.startTls(tcp, {
        hostname: options.serverName,
        caCerts: [options.caPem],
      });
      try {
        await withTimeout(tls.handshake(), timeoutMs, timedOut);
      } catch (e) {
        tls.close();
        throw e;
      }
      return tls;
    } catch (e) {
      try {
        tcp.close();
      } catch { /* closed with the TLS stream */ }
      if (e instanceof Error && CERTIFICATE_ERROR.test(e.message)) {
        throw new CertificateRejected(
          `Cannot trust ${formatAddress(address)}: its certificate is not issued for ` +
            `${options.serverName} by the expected CA (${e.message})`,
        );
      }
      throw e;
    }
  },
};

/**
 * `conn` whose `close()` also works before its TLS handshake: Deno keeps an accepted TLS
 * connection that is closed before the handshake open, to finish the handshake first, and a
 * peer that never speaks (a stalled or hostile client, one refused by the acceptor) then holds
 * the descriptor for ever; a join storm leaked thousands so. Until the first bytes arrive, a
 * close shuts the socket down first (`fd`, found when it was accepted).
 */
function closedHard(conn: Deno.TlsConn, fd: number): NetConn {
  let heard = false;
  let closed = false;
  return {
    remoteAddr: conn.remoteAddr,
    async read(p) {
      const n = await conn.read(p);
      if (n !== null) heard = true;
      return n;
    },
    write: (p) => conn.write(p),
    // The descriptor is this connection's until it is closed.
    unreadBytes: () => closed ? -1 : unreadBytes(fd),
    close() {
      if (closed) return conn.close();
      closed = true;
      if (!heard) shutdownSocket(fd);
      conn.close();
    },
  };
}
