/**
 * The proxy's private certificate authority and the certificates it issues.
 *
 *     <stateDir>/ca.key      CA private key, PKCS#8 PEM (0600)    ECDSA P-256, 10 years
 *     <stateDir>/ca.crt      CA certificate, self-signed
 *     <stateDir>/proxy.key   proxy TLS key (0600)                 SAN DNS proxy.vnet, 1 year
 *     <stateDir>/proxy.crt   proxy TLS certificate, issued by the CA
 *     host certificates      issued at join time, never stored   SAN DNS <name>.host.vnet, 1 year
 *
 * Everyone in the overlay trusts exactly this CA, and join tokens pin its hash, so the CA is
 * never regenerated behind the operator's back: a missing CA is created, but a corrupt or
 * half-present one is an error naming the file and the fix. The proxy's own certificate is
 * derived state: when missing, or within 30 days of expiry, it is issued again. The proxy needs
 * its own leaf because rustls refuses a CA certificate used directly as a server certificate.
 *
 * Every file is written through {@linkcode writeSecretFile} (0600, atomic), certificates
 * included: one write path, and the state directory is 0700 anyway.
 *
 * @module
 */

import type * as X509 from "@peculiar/x509";
import { PROXY_TLS_NAME } from "../../agent/join/join.ts";
import { loadX509 } from "../../agent/join/x509.ts";
import {
  exists,
  importPrivateKey,
  keyMatches,
  messageOf,
  readCertificate,
  readPrivateKey,
  SIGNING,
} from "./pem_files.ts";
export { type CertificateInfo, certificateInfo } from "../../agent/join/x509.ts";
import {
  generateHostKey,
  HOST_KEY_ALGORITHM,
  hostTlsName,
  importHostPublicKey,
  keyFingerprint,
  keyTlsName,
} from "../../agent/join/host_key.ts";
import { caHashOf } from "../../agent/join/token.ts";
import { type IssuedCertificate, LeafTemplate } from "./leaf_certificate.ts";
export type { IssuedCertificate } from "./leaf_certificate.ts";
import { readSecretFile, writeSecretFile } from "../../agent/secret_file.ts";

/** The proxy's trust material, loaded from (or created in) its state directory. */
export interface ProxyPki {
  /** The CA certificate, PEM: what hosts trust (`caCerts`) and what discovery sends. */
  readonly caPem: string;
  /** base64url SHA-256 of the CA certificate's DER: the hash join tokens pin. */
  readonly caHash: string;
  /** The proxy's TLS certificate (SAN `proxy.vnet`), PEM: `cert` for `Deno.listenTls`. */
  readonly proxyCertPem: string;
  /** The proxy's TLS private key, PKCS#8 PEM: `key` for `Deno.listenTls`. Secret. */
  readonly proxyKeyPem: string;
  /**
   * Issues a certificate for a joining host's public key, valid for `<hostName>.host.vnet`
   * and for its key's name (`keyTlsName`), for `lifetimeMs` (default a year) from `now`.
   *
   * @throws {TypeError} when the name is invalid or the key is not an ECDSA P-256 SPKI.
   */
  issueHostCertificate(
    hostName: string,
    spkiB64: string,
    options?: { lifetimeMs?: number; now?: number },
  ): Promise<IssuedCertificate>;
  /**
   * A certificate and fresh key for a server of the proxy's own (the control API off
   * loopback), for `names` (DNS names or IP literals), valid for `lifetimeMs`.
   */
  issueServerIdentity(
    names: string[],
    lifetimeMs: number,
  ): { certPem: string; keyPem: string };
}

const DAY_MS = 24 * 60 * 60 * 1000;

/** CA lifetime: longer than any deployment should run without a planned re-key. */
const CA_VALIDITY_DAYS = 3650;

/** Lifetime of the proxy's and hosts' certificates. */
const LEAF_VALIDITY_DAYS = 365;

/** The proxy's certificate is issued again on start when it expires sooner than this. */
const RENEW_BEFORE_DAYS = 30;

/** Certificates start this far in the past, so a peer whose clock is behind accepts them. */
const CLOCK_SKEW_MS = 5 * 60 * 1000;

/** How to start over when the CA is lost, for error messages. */
const START_OVER = "remove ca.key, ca.crt, proxy.key, proxy.crt and join.token to create a new " +
  "CA, then give the new join token to every host";

/**
 * Loads the proxy's CA and TLS certificate from `stateDir`, creating whatever is missing
 * (the directory with mode 0700, key files with 0600).
 *
 * @throws {Error} when a file is unreadable or corrupt, the key does not match its
 * certificate, or only half of the CA is present; the message names the file and the fix.
 * @example
 * ```ts
 * import { loadOrCreatePki } from "./ca.ts";
 * const dir = await Deno.makeTempDir();
 * const pki = await loadOrCreatePki(`${dir}/state`);
 * const again = await loadOrCreatePki(`${dir}/state`);
 * if (again.caHash !== pki.caHash) throw new Error("the CA must persist");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function loadOrCreatePki(stateDir: string): Promise<ProxyPki> {
  await ensureStateDir(stateDir);
  const ca = await loadOrCreateCa(stateDir);
  const proxy = await loadOrIssueProxyLeaf(stateDir, ca);
  return new Pki(ca, caHashOf(new Uint8Array(ca.cert.rawData)), proxy);
}

/** The CA's certificate and signing key, and the template its leaves are issued from. */
interface Ca {
  cert: X509.X509Certificate;
  key: CryptoKey;
  leaves: LeafTemplate;
}

/** A PEM certificate and its PKCS#8 PEM key. */
interface Leaf {
  certPem: string;
  keyPem: string;
}

class Pki implements ProxyPki {
  readonly caPem: string;
  readonly caHash: string;
  readonly proxyCertPem: string;
  readonly proxyKeyPem: string;
  readonly #ca: Ca;

  constructor(ca: Ca, caHash: string, proxy: Leaf) {
    this.#ca = ca;
    this.caPem = ca.cert.toString("pem");
    this.caHash = caHash;
    this.proxyCertPem = proxy.certPem;
    this.proxyKeyPem = proxy.keyPem;
  }

  async issueHostCertificate(
    hostName: string,
    spkiB64: string,
    options: { lifetimeMs?: number; now?: number } = {},
  ): Promise<IssuedCertificate> {
    const dnsName = hostTlsName(hostName);
    await importHostPublicKey(spkiB64); // a P-256 point on the curve, or a TypeError
    const keyName = keyTlsName(keyFingerprint(spkiB64));
    return issueLeaf(this.#ca, [dnsName, keyName], Uint8Array.fromBase64(spkiB64), {
      now: options.now ?? Date.now(),
      lifetimeMs: options.lifetimeMs ?? LEAF_VALIDITY_DAYS * DAY_MS,
    });
  }

  /**
   * A certificate and fresh key for a server of the proxy's own (the control API served off
   * loopback), valid for `names` (DNS names or IP literals) for `lifetimeMs`.
   */
  issueServerIdentity(
    names: string[],
    lifetimeMs: number,
  ): { certPem: string; keyPem: string } {
    const key = generateHostKey();
    const spki = Uint8Array.fromBase64(key.spkiB64);
    const cert = issueLeaf(this.#ca, names, spki, { now: Date.now(), lifetimeMs });
    return { certPem: cert.pem, keyPem: key.keyPem };
  }

  /** Keeps the proxy key out of `console.log` and log lines that inspect the object. */
  [Symbol.for("Deno.customInspect")](): string {
    return `ProxyPki { caHash: ${JSON.stringify(this.caHash)}, proxyKeyPem: [redacted] }`;
  }
}

async function ensureStateDir(stateDir: string): Promise<void> {
  try {
    await Deno.mkdir(stateDir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new Error(
      `Cannot create state directory ${stateDir}: ${messageOf(error)}. Create it (mode 0700) ` +
        `or choose a writable directory`,
      { cause: error },
    );
  }
}

async function loadOrCreateCa(stateDir: string): Promise<Ca> {
  const keyPath = `${stateDir}/ca.key`;
  const certPath = `${stateDir}/ca.crt`;
  const [hasKey, hasCert] = await Promise.all([exists(keyPath), exists(certPath)]);
  if (!hasKey && !hasCert) return await createCa(keyPath, certPath);
  if (!hasCert) {
    throw new Error(
      `Cannot load the proxy CA: ${keyPath} exists but ${certPath} does not, so creating the ` +
        `CA was interrupted or ca.crt was deleted. Restore ca.crt from a backup, or ${START_OVER}`,
    );
  }
  if (!hasKey) {
    throw new Error(
      `Cannot load the proxy CA: ${certPath} exists but ${keyPath} does not. Restore ca.key ` +
        `from a backup, or ${START_OVER}`,
    );
  }
  const cert = await readCertificate(certPath, `Restore ca.crt from a backup, or ${START_OVER}`);
  const key = await readPrivateKey(keyPath, `Restore ca.key from a backup, or ${START_OVER}`);
  if (!await keyMatches(key, cert)) {
    throw new Error(
      `Cannot load the proxy CA: ${keyPath} is not the key of ${certPath}. Restore the pair ` +
        `from one backup, or ${START_OVER}`,
    );
  }
  const now = Date.now();
  if (cert.notAfter.getTime() <= now || cert.notBefore.getTime() > now + CLOCK_SKEW_MS) {
    throw new Error(
      `Cannot load the proxy CA: ${certPath} is valid only from ${cert.notBefore.toISOString()} ` +
        `to ${cert.notAfter.toISOString()}. Check the system clock; if the CA has expired, ` +
        START_OVER,
    );
  }
  return { cert, key, leaves: LeafTemplate.forCa(new Uint8Array(cert.rawData), key) };
}

async function createCa(keyPath: string, certPath: string): Promise<Ca> {
  const x509 = await loadX509();
  const keys = await crypto.subtle.generateKey(HOST_KEY_ALGORITHM, true, ["sign", "verify"]);
  const now = Date.now();
  // A random suffix tells CAs of different proxies apart in error messages and tools.
  const suffix = crypto.getRandomValues(new Uint8Array(4)).toHex();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=vnet CA ${suffix}, O=vnet`,
    notBefore: new Date(now - CLOCK_SKEW_MS),
    notAfter: new Date(now + CA_VALIDITY_DAYS * DAY_MS),
    keys,
    signingAlgorithm: SIGNING,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const pkcs8 = await crypto.subtle.exportKey("pkcs8", keys.privateKey);
  // The key first: a crash before ca.crt is written leaves a CA that is plainly incomplete
  // (and reported as such), never a certificate whose key is lost.
  await writeSecretFile(keyPath, x509.PemConverter.encode(pkcs8, x509.PemConverter.PrivateKeyTag));
  await writeSecretFile(certPath, cert.toString("pem"));
  const key = keys.privateKey;
  return { cert, key, leaves: LeafTemplate.forCa(new Uint8Array(cert.rawData), key) };
}

async function loadOrIssueProxyLeaf(stateDir: string, ca: Ca): Promise<Leaf> {
  const keyPath = `${stateDir}/proxy.key`;
  const certPath = `${stateDir}/proxy.crt`;
  const fix = "Remove proxy.crt and proxy.key; the proxy issues new ones on start";
  if (await exists(keyPath) && await exists(certPath)) {
    const cert = await readCertificate(certPath, fix);
    const keyPem = await readSecretFile(keyPath);
    const key = await importPrivateKey(keyPem, keyPath, fix);
    if (!await keyMatches(key, cert)) {
      throw new Error(
        `Cannot load the proxy certificate: ${keyPath} is not the key of ${certPath}. ${fix}`,
      );
    }
    const caKey = await ca.cert.publicKey.export(HOST_KEY_ALGORITHM, ["verify"]);
    if (
      cert.issuer !== ca.cert.subject ||
      !await cert.verify({ publicKey: caKey, signatureOnly: true })
    ) {
      throw new Error(
        `Cannot load the proxy certificate: ${certPath} was not issued by the CA in ` +
          `${stateDir}/ca.crt. ${fix}`,
      );
    }
    if (cert.notAfter.getTime() - Date.now() > RENEW_BEFORE_DAYS * DAY_MS) {
      return { certPem: cert.toString("pem"), keyPem };
    }
  }
  const { keyPem, spkiB64 } = generateHostKey();
  const cert = issueLeaf(ca, [PROXY_TLS_NAME], Uint8Array.fromBase64(spkiB64), {
    now: Date.now(),
    lifetimeMs: LEAF_VALIDITY_DAYS * DAY_MS,
  });
  const certPem = cert.pem;
  await writeSecretFile(keyPath, keyPem);
  await writeSecretFile(certPath, certPem);
  return { certPem, keyPem };
}

/**
 * A TLS certificate for `names` (DNS names, or IP literals; the first is its CN), usable by
 * servers and clients, signed by the CA, valid from a little before `now`.
 */
function issueLeaf(
  ca: Ca,
  names: string[],
  spki: Uint8Array,
  validity: { now: number; lifetimeMs: number },
): IssuedCertificate {
  return ca.leaves.issue({
    names,
    spki,
    notBefore: validity.now - CLOCK_SKEW_MS,
    notAfter: validity.now + validity.lifetimeMs,
  });
}

/** 16 random bytes in hex; the generator makes it a positive INTEGER. */
function randomSerial(): string {
  return crypto.getRandomValues(new Uint8Array(16)).toHex();
}
