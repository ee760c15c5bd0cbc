/**
 * An in-memory network: the fake {@linkcode Transport} shipped beside the TLS one (as
 * wireguard-go ships `bindtest`), so a proxy and hundreds of hosts run in one process with no
 * socket, no TLS record and no kernel, and with a {@linkcode ManualClock} no real waiting.
 *
 *     network.transport("10.0.0.2").dial(addr) ──> the listener at addr ──> accept()
 *         pipe end (remoteAddr 10.0.0.1:7800)  <══ bytes, bounded ══>  pipe end (10.0.0.2:40001)
 *
 * It keeps what matters to the code above it: each transport dials from its own address (the
 * acceptor's per-source limits and the proxy's "advertised address = joined-from" check see
 * real-looking sources), a dial verifies the listener's certificate name and issuing CA as TLS
 * would (with @peculiar/x509, cached per certificate), writes wait while the reader is behind
 * (backpressure), and a closed end reads null after the bytes already sent.
 *
 * @module
 */

import type { Address } from "../config/types.ts";
import { loadX509 } from "../join/x509.ts";
import {
  CertificateRejected,
  type DialOptions,
  type Listener,
  type NetConn,
  type ServerIdentity,
  type Transport,
} from "./transport.ts";

/** Unread bytes one end holds before its peer's writes wait. */
const PIPE_BYTES = 1024 * 1024;

/** One direction's buffer and the waiters on it. */
class Inbox {
  chunks: Uint8Array[] = [];
  bytes = 0;
  /** The writer side closed: reads end after the chunks. */
  ended = false;
  readWaiter: (() => void) | null = null;
  writeWaiters: (() => void)[] = [];

  wakeReader(): void {
    const w = this.readWaiter;
    this.readWaiter = null;
    w?.();
  }

  wakeWriters(): void {
    for (const w of this.writeWaiters.splice(0)) w();
  }
}

/** One end of an in-memory stream. */
class PipeEnd implements NetConn {
  readonly remoteAddr: Address;
  readonly #in: Inbox;
  readonly #out: Inbox;
  #closed = false;

  constructor(remote: Address, inbox: Inbox, outbox: Inbox) {
    this.remoteAddr = remote;
    this.#in = inbox;
    this.#out = outbox;
  }

  async read(p: Uint8Array): Promise<number | null> {
    const box = this.#in;
    while (box.chunks.length === 0) {
      if (box.ended || this.#closed) return null;
      await new Promise<void>((r) => box.readWaiter = r);
    }
    const c = box.chunks[0];
    const n = Math.min(c.length, p.length);
    p.set(c.subarray(0, n));
    if (n === c.length) box.chunks.shift();
    else box.chunks[0] = c.subarray(n);
    box.bytes -= n;
    if (box.bytes < PIPE_BYTES) box.wakeWriters();
    return n;
  }

  async write(p: Uint8Array): Promise<number> {
    const box = this.#out;
    while (!this.#closed && !box.ended && box.bytes >= PIPE_BYTES) {
      await new Promise<void>((r) => box.writeWaiters.push(r));
    }
    if (this.#closed) throw new Deno.errors.BadResource("Cannot write: the stream is closed");
    if (box.ended) throw new Deno.errors.BrokenPipe("Cannot write: the peer closed the stream");
    box.chunks.push(p.slice());
    box.bytes += p.length;
    box.wakeReader();
    return p.length;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // The peer reads what was sent, then the end; its writes fail from now on.
    this.#out.ended = true;
    this.#out.wakeReader();
    this.#in.ended = true;
    this.#in.chunks = [];
    this.#in.bytes = 0;
    this.#in.wakeReader();
    this.#in.wakeWriters();
    this.#out.wakeWriters();
  }
}

/** A listener on the in-memory network. */
class MemoryListener implements Listener {
  readonly addr: Address;
  readonly identity: ServerIdentity;
  readonly #backlog: NetConn[] = [];
  #waiter: ((c: NetConn | null) => void) | null = null;
  #closed = false;
  readonly #onClose: () => void;

  constructor(addr: Address, identity: ServerIdentity, onClose: () => void) {
    this.addr = addr;
    this.identity = identity;
    this.#onClose = onClose;
  }

  get closed(): boolean {
    return this.#closed;
  }

  deliver(conn: NetConn): void {
    const w = this.#waiter;
    this.#waiter = null;
    if (w) w(conn);
    else this.#backlog.push(conn);
  }

  async accept(): Promise<NetConn> {
    const queued = this.#backlog.shift();
    if (queued) return queued;
    if (this.#closed) throw new Deno.errors.BadResource("Cannot accept: the listener is closed");
    const conn = await new Promise<NetConn | null>((r) => this.#waiter = r);
    if (conn === null) throw new Deno.errors.BadResource("Cannot accept: the listener is closed");
    return conn;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#onClose();
    for (const c of this.#backlog.splice(0)) c.close();
    const w = this.#waiter;
    this.#waiter = null;
    w?.(null);
  }
}

/**
 * The network: listeners by address, and one {@linkcode Transport} per source address.
 *
 * @example A host dials a listener on the memory network
 * ```ts
 * import { MemoryNetwork } from "./memory_transport.ts";
 * import { loadOrCreatePki } from "../../proxy/pki/ca.ts";
 * const dir = await Deno.makeTempDir();
 * const pki = await loadOrCreatePki(dir);
 * const net = new MemoryNetwork();
 * const listener = net.transport("10.0.0.1").listen({ hostname: "10.0.0.1", port: 7800 }, {
 *   certPem: pki.proxyCertPem,
 *   keyPem: pki.proxyKeyPem,
 * });
 * const host = net.transport("10.0.0.2");
 * const conn = await host.dial(listener.addr, { serverName: "proxy.vnet", caPem: pki.caPem });
 * const served = await listener.accept();
 * await conn.write(new Uint8Array([1, 2, 3]));
 * const got = new Uint8Array(8);
 * const n = await served.read(got);
 * await Deno.remove(dir, { recursive: true });
 * if (n !== 3 || served.remoteAddr.hostname !== "10.0.0.2") throw new Error("bytes and source");
 * ```
 */
export class MemoryNetwork {
  readonly #listeners = new Map<string, MemoryListener>();
  #nextPort = 40_000;
  /** Verified (certificate, CA, name) triples, so 1,000 hosts do not verify 1,000 times. */
  readonly #verified = new Map<string, Promise<string | null>>();
  /** Connections dialed so far (a test's measure of reconnects). */
  dials = 0;

  /** A transport whose connections come from `hostname` (and listen there when asked 0.0.0.0). */
  transport(hostname: string): Transport {
    return {
      listen: (address, identity) => this.#listen(hostname, address, identity),
      dial: (address, options) => this.#dial(hostname, address, options),
    };
  }

  #listen(self: string, address: Address, identity: ServerIdentity): Listener {
    const hostname = address.hostname === "0.0.0.0" || address.hostname === "::"
      ? self
      : address.hostname;
    const port = address.port === 0 ? this.#nextPort++ : address.port;
    const key = `${hostname}:${port}`;
    if (this.#listeners.get(key)?.closed === false) {
      throw new Deno.errors.AddrInUse(`Address already in use (memory network): ${key}`);
    }
    const listener = new MemoryListener(
      { hostname, port },
      identity,
      () => this.#listeners.delete(key),
    );
    this.#listeners.set(key, listener);
    return listener;
  }

  async #dial(self: string, address: Address, options: DialOptions): Promise<NetConn> {
    this.dials++;
    const key = `${address.hostname}:${address.port}`;
    const listener = this.#listeners.get(key);
    if (!listener || listener.closed) {
      throw new Deno.errors.ConnectionRefused(`Connection refused (memory network): ${key}`);
    }
    if (options.caPem !== null) {
      const problem = await this.#verify(listener.identity.certPem, options);
      if (problem !== null) {
        throw new CertificateRejected(
          `Cannot trust ${key}: its certificate is not issued for ${options.serverName} by the ` +
            `expected CA (${problem})`,
        );
      }
    }
    const local = { hostname: self, port: this.#nextPort++ };
    const toServer = new Inbox();
    const toClient = new Inbox();
    listener.deliver(new PipeEnd(local, toServer, toClient));
    return new PipeEnd(listener.addr, toClient, toServer);
  }

  /** Why `certPem` does not prove `serverName` under `caPem`, or null when it does. */
  #verify(certPem: string, options: DialOptions): Promise<string | null> {
    const key = `${options.serverName}\n${options.caPem}\n${certPem}`;
    let v = this.#verified.get(key);
    if (!v) this.#verified.set(key, v = verifyCertificate(certPem, options));
    return v;
  }
}

async function verifyCertificate(certPem: string, options: DialOptions): Promise<string | null> {
  const x509 = await loadX509();
  const cert = new x509.X509Certificate(certPem);
  const ca = new x509.X509Certificate(options.caPem!);
  if (!await cert.verify({ publicKey: ca.publicKey, signatureOnly: true })) {
    return "UnknownIssuer";
  }
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const names = san?.names.items.filter((n) => n.type === "dns").map((n) => n.value) ?? [];
  return names.includes(options.serverName) ? null : `NotValidForName: ${names.join(", ")}`;
}
