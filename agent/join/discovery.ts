/**
 * CA discovery: how a host that trusts nothing yet learns the proxy's CA certificate.
 *
 *     host                                      proxy
 *     TLS, certificate NOT verified  ───────>
 *     preamble, DISCOVER (empty)     ───────>
 *                                    <───────   preamble, CA_CERT (PEM)
 *     SHA-256(CA DER) == token's caHash?  (constant time)
 *       yes: trust that CA for every later connection
 *       no:  stop: the token is for another proxy, or someone is in the middle
 *
 * The unverified TLS only carries bytes whose hash the operator already pinned in the join
 * token (as kubeadm does with its discovery hash), so an attacker in the middle can at most
 * relay the genuine CA, which gains it nothing: the host's next connection verifies the
 * proxy's certificate against that CA. It is the one dial with `caPem: null` (transport.ts).
 *
 * @module
 */

import { type Clock, systemClock } from "../clock.ts";
import { type Address, formatAddress } from "../config/types.ts";
import { Handshake, HandshakeTimeout } from "../link/handshake.ts";
import { type Conn, DialTimeout, tlsTransport, type Transport } from "../link/transport.ts";
import {
  HEADER_LEN,
  MessageType,
  PREAMBLE_LEN,
  ProtocolError,
  writeHeader,
  writePreamble,
} from "../link/wire.ts";
import { PROXY_TLS_NAME } from "./join.ts";
import { caHashOf, isCaHash, sameSecret } from "./token.ts";

/** Largest CA_CERT body accepted or sent: a P-256 CA certificate in PEM is under 1 KiB. */
export const MAX_CA_CERT_BYTES = 16 * 1024;

/** Options of {@linkcode discoverCa}. */
export interface DiscoverOptions {
  /** Time allowed for the whole exchange: connect, TLS, answer. */
  timeoutMs: number;
  /** Aborting rejects with the signal's reason and closes the connection. */
  signal?: AbortSignal;
  /** How to reach the proxy; TLS unless a test runs on the memory network. */
  transport?: Transport;
  clock?: Clock;
}

/** Exactly one PEM certificate and nothing else. */
const ONE_PEM_CERTIFICATE =
  /^-----BEGIN CERTIFICATE-----\r?\n((?:[A-Za-z0-9+/=]+\r?\n)+)-----END CERTIFICATE-----\r?\n?$/;

/**
 * Fetches the proxy's CA certificate over unverified TLS and returns it (PEM) only if its
 * SHA-256 matches `caHash`, the hash from the join token.
 *
 * @throws {Error} on a hash mismatch (the token belongs to another proxy, or someone is in the
 * middle), a timeout, a closed or refused connection, or a peer that does not speak vnet; the
 * message names the address and what to do.
 * @throws the signal's reason when `options.signal` aborts.
 * @example A host learns the CA of a proxy (here a stand-in on loopback)
 * ```ts
 * import { answerDiscover, discoverCa } from "./discovery.ts";
 * import { createJoinToken } from "./token.ts";
 * import { loadOrCreatePki } from "../../proxy/pki/ca.ts";
 * const stateDir = await Deno.makeTempDir();
 * const pki = await loadOrCreatePki(stateDir);
 * const token = createJoinToken(pki.caHash); // what the operator gives the host
 * // The proxy's side: read the host's DISCOVER, answer with the CA certificate.
 * const listener = Deno.listenTls({
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   cert: pki.proxyCertPem,
 *   key: pki.proxyKeyPem,
 * });
 * const answered = listener.accept().then(async (conn) => {
 *   await conn.read(new Uint8Array(64));
 *   await answerDiscover(conn, pki.caPem);
 *   conn.close();
 * });
 * // The host's side: it trusts nothing yet but the hash in its token.
 * const address = { hostname: "127.0.0.1", port: listener.addr.port };
 * const caPem = await discoverCa(address, token.caHash, { timeoutMs: 5000 });
 * await answered;
 * listener.close();
 * await Deno.remove(stateDir, { recursive: true });
 * // Every later connection verifies the proxy against it (`caCerts: [caPem]`).
 * if (caPem !== pki.caPem) throw new Error("not the proxy's CA");
 * ```
 */
export async function discoverCa(
  address: Address,
  caHash: string,
  options: DiscoverOptions,
): Promise<string> {
  const where = formatAddress(address);
  if (!isCaHash(caHash)) {
    throw new TypeError(
      `Cannot discover the CA of ${where}: the CA hash is not 43 base64url characters. ` +
        `Pass the caHash of a parsed join token`,
    );
  }
  const { signal, timeoutMs } = options;
  if (signal?.aborted) throw signal.reason;
  const clock = options.clock ?? systemClock;
  const transport = options.transport ?? tlsTransport;
  const notVnet = "Check that the address and port are those of a vnet proxy of this version";
  const fail = (detail: string, fix: string) =>
    new Error(`Cannot discover the CA of ${where}: ${detail}. ${fix}`);
  let conn: Conn | null = null;
  const onAbort = () => conn?.close();
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    // The dial has its bound, and the exchange then the whole timeout: in a join storm the
    // proxy's answer waits behind others, and a host that gave up after a long connect would
    // have cost the proxy a TLS handshake for nothing (SYN retries before cost it nothing).
    const dialed = transport.dial(address, { serverName: PROXY_TLS_NAME, caPem: null, timeoutMs });
    let timer: { cancel(): void } | undefined;
    conn = await Promise.race([
      dialed,
      new Promise<never>((_, reject) => {
        timer = clock.after(timeoutMs, () => {
          dialed.then((c) => c.close(), () => {});
          reject(new HandshakeTimeout("timed out"));
        });
      }),
    ]).finally(() => timer?.cancel());
    if (signal?.aborted) throw signal.reason;
    const hs = new Handshake(conn, timeoutMs, {
      clock,
      maxBodyBytes: MAX_CA_CERT_BYTES,
    });
    await hs.start(MessageType.DISCOVER);
    const answer = await hs.expect(MessageType.CA_CERT, MessageType.GOODBYE);
    if (answer.type === MessageType.GOODBYE) {
      throw fail(`the proxy refused: ${goodbyeReason(answer.body)}`, "Act on the proxy's reason");
    }
    return verify(answer.body.slice(), caHash, where);
  } catch (e) {
    if (signal?.aborted) throw signal.reason;
    if (
      e instanceof CaMismatch || (e instanceof Error && e.message.startsWith("Cannot discover"))
    ) {
      throw e;
    }
    if (e instanceof HandshakeTimeout || e instanceof DialTimeout) {
      throw fail(
        `no answer within ${timeoutMs} ms`,
        "Check the address and port, that the proxy is running, and that no firewall drops " +
          "the connection",
      );
    }
    if (e instanceof ProtocolError) {
      const detail = e.message.replace(/^Cannot [a-z ]+: /, "");
      throw fail(
        /closed the connection/.test(detail)
          ? "the proxy closed the connection before sending its CA certificate"
          : detail,
        notVnet,
      );
    }
    throw fail((e as Error).message, "Check the address and port, and that the proxy is running");
  } finally {
    signal?.removeEventListener("abort", onAbort);
    conn?.close();
  }
}

/**
 * Answers a host's DISCOVER: writes this side's preamble and a CA_CERT with `caPem`.
 * The proxy calls it when the first message of a stream is DISCOVER, before writing anything
 * else, and closes the stream afterwards.
 *
 * @throws {RangeError} when `caPem` exceeds {@linkcode MAX_CA_CERT_BYTES}.
 * @example
 * ```ts
 * import { answerDiscover } from "./discovery.ts";
 * const written: Uint8Array[] = [];
 * const conn = { write: (b: Uint8Array) => (written.push(b.slice()), Promise.resolve(b.length)) };
 * await answerDiscover(conn, "-----BEGIN CERTIFICATE-----\n...");
 * const out = written[0];
 * if (new TextDecoder().decode(out.subarray(0, 4)) !== "VNET" || out[8] !== 0x05) {
 *   throw new Error("preamble, then CA_CERT");
 * }
 * ```
 */
export async function answerDiscover(
  conn: { write(bytes: Uint8Array): Promise<number> },
  caPem: string,
): Promise<void> {
  const body = new TextEncoder().encode(caPem);
  if (body.length > MAX_CA_CERT_BYTES) {
    throw new RangeError(
      `Cannot answer discovery: the CA certificate is ${body.length} bytes, over the ` +
        `${MAX_CA_CERT_BYTES} hosts accept. Use the CA that loadOrCreatePki creates`,
    );
  }
  const out = new Uint8Array(PREAMBLE_LEN + HEADER_LEN + body.length);
  writePreamble(out, 0);
  writeHeader(out, PREAMBLE_LEN, MessageType.CA_CERT, body.length);
  out.set(body, PREAMBLE_LEN + HEADER_LEN);
  for (let at = 0; at < out.length;) at += await conn.write(out.subarray(at));
}

/** The PEM in `body` if it is one certificate whose hash is `caHash`. */
function verify(body: Uint8Array, caHash: string, where: string): string {
  let pem: string;
  try {
    pem = new TextDecoder("utf-8", { fatal: true }).decode(body);
  } catch {
    pem = "";
  }
  const match = ONE_PEM_CERTIFICATE.exec(pem);
  const base64 = match?.[1].replace(/\r?\n/g, "") ?? "";
  let der: Uint8Array<ArrayBuffer> | null = null;
  try {
    der = Uint8Array.fromBase64(base64);
  } catch { /* reported below */ }
  // Canonical base64 only: the returned PEM then holds exactly the bytes that were hashed.
  if (match === null || der === null || der.length === 0 || der.toBase64() !== base64) {
    throw new Error(
      `Cannot discover the CA of ${where}: its answer is not one PEM certificate. ` +
        `Check that the address and port are those of a vnet proxy of this version`,
    );
  }
  const actual = caHashOf(der);
  const encoder = new TextEncoder();
  if (!sameSecret(encoder.encode(actual), encoder.encode(caHash))) {
    throw new CaMismatch(
      `Cannot trust the proxy at ${where}: its CA certificate has hash ${actual}, but the join ` +
        `token expects ${caHash}. Either the token belongs to another proxy, or someone between ` +
        `this host and ${where} is intercepting the connection. Check that the address and the ` +
        `token come from the same proxy (its state directory's join.token); do not join until ` +
        `they match`,
    );
  }
  return pem;
}

/**
 * The proxy's CA does not match the token's hash: retrying cannot help, so a host stops
 * instead of reconnecting.
 */
export class CaMismatch extends Error {
  override name = "CaMismatch";
}

/** The reason in a GOODBYE body, shortened; GOODBYE bodies are `{"reason": "..."}`. */
function goodbyeReason(body: Uint8Array): string {
  try {
    const reason = JSON.parse(new TextDecoder().decode(body))?.reason;
    if (typeof reason === "string") return reason.slice(0, 300);
  } catch { /* no reason given */ }
  return "no reason given";
}
