/**
 * The proxy's side of a new connection: answer a CA discovery, or admit a host.
 *
 *     DISCOVER            -> CA_CERT, close (trust comes from the token's hash, not from us)
 *     HELLO(name, token)  -> HELLO(challenge) -> AUTH(proof, public key)
 *                         -> WELCOME(host certificate, settings)   or GOODBYE(reason), close
 *
 * Every refusal is a GOODBYE with a reason the host can act on, then a close; nothing a peer
 * sends can throw past this module except as a refusal.
 *
 * @module
 */

import { answerDiscover } from "../agent/join/discovery.ts";
import { checkHostName, keyFingerprint } from "../agent/join/host_key.ts";
import { newChallenge, verifyJoinProof } from "../agent/join/proof.ts";
import type { JoinToken } from "../agent/join/token.ts";
import type { HostBook } from "./host_book.ts";
import type { IssuedCertificate } from "./pki/ca.ts";
import type { Clock } from "../agent/clock.ts";
import type { Conn } from "../agent/link/transport.ts";
import { field, Handshake } from "../agent/link/handshake.ts";
import { MessageType, ProtocolError } from "../agent/link/wire.ts";

/** What the admission needs from the proxy. */
export interface AdmitContext {
  token: JoinToken;
  /** When the join token stops admitting new hosts (ms since epoch), or null: never. */
  tokenExpiresAt?: number | null;
  /** Who may join under which name, and with which rejoin secret (see host_book.ts). */
  book?: HostBook;
  caPem: string;
  issueHostCertificate(hostName: string, spkiB64: string): Promise<IssuedCertificate>;
  /** Settings sent to every host in its WELCOME. */
  settings: Record<string, unknown>;
  timeoutMs: number;
  clock: Clock;
  /** Told of every host admitted (e.g. its VM slots, for placement). */
  onAdmitted?(host: AdmittedHost): void;
}

/** An admitted host, ready to become a link. */
export interface AdmittedHost {
  name: string;
  handshake: Handshake;
  offload: boolean;
  /** Its key: the fingerprint (identity) and the SPKI (to renew its certificate). */
  key: string;
  spkiB64: string;
  /** VMs it says it can hold (`--vm-slots`), or null when it did not say. */
  vmSlots: number | null;
}

/** Why a host was refused, as the GOODBYE's `code` says it (hosts act on it). */
export type RefusalCode = "name-taken" | "revoked";

/** The peer was refused; `reason` was sent to it and is safe to log. */
export class AdmissionRefused extends Error {
  override name = "AdmissionRefused";
  /** The machine-readable kind of refusal, when it has one. */
  readonly code: RefusalCode | null;
  constructor(reason: string, code: RefusalCode | null = null) {
    super(reason);
    this.code = code;
  }
}

/**
 * Runs the proxy's side of the handshake on `conn`. Resolves to the host, or to null after
 * answering a discovery; rejects with {@linkcode AdmissionRefused}, a `ProtocolError` or a
 * timeout, after which the caller closes the connection.
 *
 * `authenticated` is called once the peer has proven the join token or its rejoin secret: the
 * front door's handshake slot bounds what strangers cost, and the rest (the certificate, the
 * host book's write) is owed to a credential holder. Holding the slot through the book's write
 * made a storm's pace that of the disk.
 */
export async function admit(
  conn: Conn,
  ctx: AdmitContext,
  authenticated: () => void = () => {},
): Promise<AdmittedHost | null> {
  const hs = new Handshake(conn, ctx.timeoutMs, { clock: ctx.clock });
  const first = await hs.expect(MessageType.DISCOVER, MessageType.HELLO);
  if (first.type === MessageType.DISCOVER) {
    await answerDiscover(conn, ctx.caPem);
    return null;
  }
  const hello = Handshake.json(first);
  const refuse = async (reason: string, code: RefusalCode | null = null): Promise<never> => {
    await hs.send(MessageType.GOODBYE, code ? { reason, code } : { reason }).catch(() => {});
    throw new AdmissionRefused(reason, code);
  };
  if (hello.role !== "host") throw new ProtocolError("Cannot admit peer: HELLO without role host");
  let name: string;
  try {
    name = checkHostName(field(hello, "name", 63));
  } catch (e) {
    return await refuse(`invalid host name: ${(e as Error).message}`);
  }
  // A host that joined before proves its own rejoin secret; a new one the join token's.
  const rejoinSecret = hello.rejoin === true ? ctx.book?.secretOf(name) ?? null : null;
  const credential = credentialProblem(hello, name, rejoinSecret, ctx);
  if (credential) return await refuse(credential);
  const features = typeof hello.features === "object" && hello.features !== null
    ? hello.features as Record<string, unknown>
    : {};
  const challenge = newChallenge();
  await hs.start(MessageType.HELLO, { role: "proxy", name: "proxy", challenge });
  const auth = Handshake.json(await hs.expect(MessageType.AUTH));
  const proof = field(auth, "proof", 128);
  const spkiB64 = field(auth, "publicKey", 1024);
  const ok = verifyJoinProof(
    rejoinSecret ?? ctx.token.secret,
    challenge,
    name,
    spkiB64,
    proof,
  );
  if (!ok) {
    return await refuse(
      rejoinSecret
        ? `wrong rejoin credential for ${name}: join with the join token`
        : "wrong join token secret: use the token in the proxy's join.token",
    );
  }
  authenticated();
  // Checked after the proof, so that only a token or credential holder learns whether a
  // name is taken.
  const key = keyFingerprint(spkiB64);
  const keyRefusal = keyProblem(ctx, name, key);
  if (keyRefusal) return await refuse(keyRefusal.reason, keyRefusal.code);
  let issued: IssuedCertificate;
  try {
    issued = await ctx.issueHostCertificate(name, spkiB64);
  } catch (e) {
    return await refuse(`cannot issue a certificate: ${(e as Error).message}`);
  }
  const rejoin = ctx.book
    ? await ctx.book.admit(name, key, issued.info, ctx.clock.now())
    : undefined;
  await hs.send(MessageType.WELCOME, { certificate: issued.pem, settings: ctx.settings, rejoin });
  const slots = features.vmSlots;
  const vmSlots = Number.isInteger(slots) && (slots as number) >= 0 && (slots as number) <= 100_000
    ? slots as number
    : null;
  const admitted = {
    name,
    handshake: hs,
    offload: features.offload === true,
    key,
    spkiB64,
    vmSlots,
  };
  ctx.onAdmitted?.(admitted);
  return admitted;
}

/**
 * Why the HELLO's credential cannot be used, or null: a rejoin without a credential on file,
 * a token the proxy does not know, or one that expired.
 */
function credentialProblem(
  hello: Record<string, unknown>,
  name: string,
  rejoinSecret: Uint8Array | null,
  ctx: AdmitContext,
): string | null {
  if (hello.rejoin === true && rejoinSecret === null) {
    return `unknown rejoin credential for ${name}: join with the join token`;
  }
  if (rejoinSecret !== null) return null;
  const tokenId = field(hello, "tokenId", 64);
  if (tokenId !== ctx.token.id) {
    return `unknown join token ${tokenId.slice(0, 16)}: use the token in the proxy's join.token`;
  }
  if (ctx.tokenExpiresAt != null && ctx.clock.now() > ctx.tokenExpiresAt) {
    return `join token ${ctx.token.id} expired at ${new Date(ctx.tokenExpiresAt).toISOString()}: ` +
      "ask the operator for a new one (delete join.token and restart the proxy); " +
      "hosts that joined before keep their own credentials";
  }
  return null;
}

/**
 * A host is its key: a name belongs to the key that first joined with it, and a revoked key
 * never comes back. Why `key` may not join as `name`, or null.
 */
function keyProblem(
  ctx: AdmitContext,
  name: string,
  key: string,
): { reason: string; code: RefusalCode } | null {
  const revoked = ctx.book?.revocationOf(key);
  if (revoked) {
    return {
      reason: `this host's key ${key} was revoked (as ${revoked.name}, ` +
        `${new Date(revoked.at).toISOString()}): a new key needs the operator's consent; ` +
        "remove the host's state-dir/host.key and join with a current token",
      code: "revoked",
    };
  }
  const bound = ctx.book?.get(name);
  if (bound?.key && bound.key !== key) {
    return {
      reason: `host name ${name} is taken by another key (${bound.key}, first joined ` +
        `${new Date(bound.firstJoined).toISOString()}): give this host another --name, or, ` +
        `if that host is gone for good, run \`agent hosts revoke ${name}\` on the proxy`,
      code: "name-taken",
    };
  }
  return null;
}
