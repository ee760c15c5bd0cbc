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

import { tryTcpNoDelay } from "../../ffi/socket.ts";
import { type Address, formatAddress } from "../config/types.ts";
import { logger } from "../log.ts";
import { nodeTlsConn } from "./node_tls_conn.ts";

/** A byte stream: what handshakes and links read and write. `Deno.TlsConn` fits. */
export interface Conn {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  close(): void;
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
}

/** Listen and dial. */
export interface Transport {
  /** @throws as `Deno.listenTls` does (`AddrInUse`, `PermissionDenied`...). */
  listen(address: Address, identity: ServerIdentity): Listener;
  /** @throws {CertificateRejected} when the peer's certificate fails verification. */
  dial(address: Address, options: DialOptions): Promise<NetConn>;
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
        const failed = tryTcpNoDelay(conn);
        if (failed) {
          logger("link").warn("Cannot set TCP_NODELAY for {from}: {error}", {
            from: formatAddress(conn.remoteAddr),
            error: failed,
          });
        }
        return conn;
      },
      close: () => listener.close(),
    };
  },

  async dial(address, options) {
    if (options.caPem === null) return await nodeTlsConn(address, options.serverName);
    const tcp = await Deno.connect({ hostname: address.hostname, port: address.port });
    try {
      tcp.setNoDelay(true);
      const tls = await Deno.startTls(tcp, {
        hostname: options.serverName,
        caCerts: [options.caPem],
      });
      try {
        await tls.handshake();
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
