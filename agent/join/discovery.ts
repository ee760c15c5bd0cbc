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
 * proxy's certificate against that CA. Deno's own TLS cannot skip verification per
 * connection, so discovery uses `node:tls` with `rejectUnauthorized: false`.
 *
 * @module
 */

import * as tls from "node:tls";
import { type Address, formatAddress } from "../config/types.ts";
import {
  checkPreamble,
  HEADER_LEN,
  MessageType,
  PREAMBLE_LEN,
  StreamReader,
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
export function discoverCa(
  address: Address,
  caHash: string,
  options: DiscoverOptions,
): Promise<string> {
  const where = formatAddress(address);
  if (!isCaHash(caHash)) {
    return Promise.reject(
      new TypeError(
        `Cannot discover the CA of ${where}: the CA hash is not 43 base64url characters. ` +
          `Pass the caHash of a parsed join token`,
      ),
    );
  }
  const { signal, timeoutMs } = options;
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise<string>((resolve, reject) => {
    const socket = tls.connect({
      host: address.hostname,
      port: address.port,
      servername: PROXY_TLS_NAME,
      rejectUnauthorized: false,
    });
    const reader = new StreamReader(undefined, { preAuthBodyBytes: MAX_CA_CERT_BYTES });
    const head = new Uint8Array(PREAMBLE_LEN + HEADER_LEN);
    let headBytes = 0;
    let done = false;
    let answered = false;

    const finish = (result: { caPem: string } | { error: unknown }) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      socket.destroy();
      if ("caPem" in result) resolve(result.caPem);
      else reject(result.error);
    };
    const fail = (detail: string, fix: string) =>
      finish({ error: new Error(`Cannot discover the CA of ${where}: ${detail}. ${fix}`) });
    const notVnet = "Check that the address and port are those of a vnet proxy of this version";
    const onAbort = () => finish({ error: signal!.reason });
    const timer = setTimeout(
      () =>
        fail(
          `no answer within ${timeoutMs} ms`,
          "Check the address and port, that the proxy is running, and that no firewall drops " +
            "the connection",
        ),
      timeoutMs,
    );
    signal?.addEventListener("abort", onAbort, { once: true });

    socket.on("secureConnect", () => {
      const out = new Uint8Array(PREAMBLE_LEN + HEADER_LEN);
      writePreamble(out, 0);
      writeHeader(out, PREAMBLE_LEN, MessageType.DISCOVER, 0);
      socket.write(out);
    });
    // Once the answer is in, the proxy closing the stream (as it does) is no failure: the
    // answer's check, still running, settles the promise.
    socket.on("error", (error: Error) => {
      if (answered) return;
      fail(error.message, "Check the address and port, and that the proxy is running");
    });
    socket.on("close", () => {
      if (answered) return;
      fail("the proxy closed the connection before sending its CA certificate", notVnet);
    });
    socket.on("data", (chunk: Uint8Array) => {
      if (done || answered) return;
      try {
        onData(chunk);
      } catch (error) {
        // Nothing the peer sends may throw out of an event handler and end the process.
        finish({ error });
      }
    });

    const onData = (chunk: Uint8Array) => {
      // The first preamble and header are checked before the body is buffered, so a peer
      // announcing a huge body is refused at once rather than after sending it.
      if (headBytes < head.length) {
        const n = Math.min(head.length - headBytes, chunk.length);
        head.set(chunk.subarray(0, n), headBytes);
        headBytes += n;
        if (headBytes === head.length) {
          const problem = checkHead(head);
          if (problem !== null) return fail(problem, notVnet);
        }
      }
      for (let at = 0; at < chunk.length;) {
        const space = reader.space();
        const n = Math.min(space.length, chunk.length - at);
        space.set(chunk.subarray(at, at + n));
        reader.commit(n);
        at += n;
      }
      const message = reader.next();
      if (message === null) return;
      answered = true;
      const body = message.body.slice();
      if (message.type === MessageType.GOODBYE) {
        return fail(`the proxy refused: ${goodbyeReason(body)}`, "Act on the proxy's reason");
      }
      verify(body, caHash, where).then((caPem) => finish({ caPem }), (error) => finish({ error }));
    };
  });
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

/** What is wrong with the peer's preamble and first header, or null when they are fine. */
function checkHead(head: Uint8Array): string | null {
  try {
    checkPreamble(head);
  } catch (error) {
    return (error as Error).message.replace(/^Cannot accept stream: /, "");
  }
  const type = head[PREAMBLE_LEN];
  const length = (head[PREAMBLE_LEN + 1] << 16) | (head[PREAMBLE_LEN + 2] << 8) |
    head[PREAMBLE_LEN + 3];
  if (type !== MessageType.CA_CERT && type !== MessageType.GOODBYE) {
    return `the peer answered with message type 0x${type.toString(16)} instead of CA_CERT`;
  }
  if (length > MAX_CA_CERT_BYTES) {
    return `the peer announced a ${length}-byte answer, over the ${MAX_CA_CERT_BYTES}-byte limit`;
  }
  return null;
}

/** The PEM in `body` if it is one certificate whose hash is `caHash`. */
async function verify(body: Uint8Array, caHash: string, where: string): Promise<string> {
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
  const actual = await caHashOf(der);
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
