/**
 * Leaf certificates from a template: what the proxy issues to every joining host (and to its
 * own servers), encoded directly as DER around a precomputed issuer part.
 *
 *     Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm ecdsa-with-SHA256,
 *                                signature BIT STRING (ECDSA-Sig-Value) }
 *     tbsCertificate: v3, random positive 16-byte serial, issuer (the CA's subject, its bytes
 *       as in ca.crt), validity, subject CN=<first name>, the P-256 key, and the extensions
 *       basicConstraints (critical, not a CA), keyUsage (critical, digitalSignature),
 *       extKeyUsage (serverAuth, clientAuth), subjectAltName (DNS names and IP addresses),
 *       subjectKeyIdentifier, authorityKeyIdentifier (the CA's own key identifier)
 *
 * That is the profile the certificates had when a general X.509 library made them (rustls
 * and the memory transport verify them the same way); the library took ~6 ms per certificate,
 * this takes one ECDSA signature and a SHA-1. The issuer part is fixed at start, so a
 * certificate's only inputs are its names, key, validity and serial: the issued certificate's
 * serial and expiry are known without parsing it back. The signature and the SHA-1 are
 * node:crypto's synchronous ones (the same CA key, as a KeyObject): under a join storm an await
 * on Web Crypto waited behind the whole event-loop turn, tens of milliseconds per host.
 *
 * @module
 */

import { createHash, KeyObject, sign } from "node:crypto";
import { ipLiteralBytes } from "../../agent/config/types.ts";
import type { CertificateInfo } from "../../agent/join/x509.ts";
import {
  bitString,
  children,
  contextConstructed,
  contextPrimitive,
  octetString,
  oid,
  readElement,
  seq,
  smallInteger,
  Tag,
  time,
  tlv,
  TRUE,
  unsignedInteger,
  utf8String,
} from "./der.ts";

/** The only key a leaf may carry: an uncompressed P-256 point in its SubjectPublicKeyInfo. */
const P256_SPKI_PREFIX = Uint8Array.fromHex(
  "3059301306072a8648ce3d020106082a8648ce3d030107034200",
);
const P256_SPKI_LENGTH = P256_SPKI_PREFIX.length + 65;

const ECDSA_SHA256 = seq(oid("1.2.840.10045.4.3.2"));

/** A certificate as issued: its DER, its PEM, and what the proxy records of it. */
export interface IssuedCertificate {
  der: Uint8Array;
  pem: string;
  info: CertificateInfo;
}

/** What one leaf certificate says. */
export interface LeafRequest {
  /** DNS names or IP literals; the first is also the subject's CN. */
  names: string[];
  /** The subject's key: a P-256 SubjectPublicKeyInfo, DER. */
  spki: Uint8Array;
  notBefore: number;
  notAfter: number;
  /** 16 bytes, top bit clear (a positive INTEGER without padding); random when absent. */
  serial?: Uint8Array;
}

/** Issues leaves under one CA: its subject and key identifier computed once. */
export class LeafTemplate {
  readonly #issuer: Uint8Array;
  readonly #authorityKeyId: Uint8Array;
  readonly #caKey: KeyObject;

  private constructor(issuer: Uint8Array, authorityKeyId: Uint8Array, caKey: CryptoKey) {
    this.#issuer = issuer;
    this.#authorityKeyId = authorityKeyId;
    this.#caKey = KeyObject.from(caKey);
  }

  /**
   * The template for the CA whose certificate is `caDer` and whose private key is `caKey`.
   *
   * @throws {RangeError} when `caDer` is not a certificate.
   */
  static forCa(caDer: Uint8Array, caKey: CryptoKey): LeafTemplate {
    const tbs = children(readElement(caDer).body)[0];
    const fields = children(tbs.body);
    const v3 = fields[0].tag === contextConstructed(0) ? 1 : 0;
    const subject = fields[4 + v3];
    const spki = fields[5 + v3];
    const keyId = caKeyIdentifier(fields.slice(6 + v3)) ??
      keyIdentifier(children(spki.body)[1].body.subarray(1));
    return new LeafTemplate(subject.raw.slice(), keyId, caKey);
  }

  /**
   * Signs a leaf for `req`.
   *
   * @throws {TypeError} when the key is not an uncompressed P-256 SPKI, or a name is empty.
   */
  issue(req: LeafRequest): IssuedCertificate {
    if (req.spki.length !== P256_SPKI_LENGTH || !startsWith(req.spki, P256_SPKI_PREFIX)) {
      throw new TypeError("the key is not an uncompressed ECDSA P-256 SubjectPublicKeyInfo");
    }
    if (req.names.length === 0 || req.names.some((n) => n === "")) {
      throw new TypeError("a certificate needs at least one non-empty name");
    }
    const serial = req.serial ?? randomSerial();
    const point = req.spki.subarray(P256_SPKI_PREFIX.length);
    const tbs = seq(
      tlv(contextConstructed(0), smallInteger(2)),
      unsignedInteger(serial),
      ECDSA_SHA256,
      this.#issuer,
      seq(time(req.notBefore), time(req.notAfter)),
      seq(tlv(Tag.SET, seq(oid("2.5.4.3"), utf8String(req.names[0])))),
      req.spki,
      tlv(contextConstructed(3), seq(...this.#extensions(req.names, point))),
    );
    const raw = new Uint8Array(
      sign("sha256", tbs, { key: this.#caKey, dsaEncoding: "ieee-p1363" }),
    );
    const signature = seq(unsignedInteger(raw.subarray(0, 32)), unsignedInteger(raw.subarray(32)));
    const der = seq(tbs, ECDSA_SHA256, bitString(signature));
    return {
      der,
      pem: certificatePem(der),
      info: { serial: serial.toHex(), notAfter: Math.floor(req.notAfter / 1000) * 1000 },
    };
  }

  #extensions(names: string[], point: Uint8Array): Uint8Array[] {
    const ext = (id: string, critical: boolean, value: Uint8Array) =>
      seq(oid(id), ...(critical ? [TRUE] : []), octetString(value));
    return [
      ext("2.5.29.19", true, seq()),
      ext("2.5.29.15", true, new Uint8Array([Tag.BIT_STRING, 2, 7, 0x80])),
      ext("2.5.29.37", false, seq(oid("1.3.6.1.5.5.7.3.1"), oid("1.3.6.1.5.5.7.3.2"))),
      ext("2.5.29.17", false, seq(...names.map(generalName))),
      ext("2.5.29.14", false, octetString(keyIdentifier(point))),
      ext("2.5.29.35", false, seq(tlv(contextPrimitive(0), this.#authorityKeyId))),
    ];
  }
}

/** RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits. */
function keyIdentifier(publicKeyBits: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha1").update(publicKeyBits).digest());
}

/** The keyIdentifier of the CA's subjectKeyIdentifier extension, or null. */
function caKeyIdentifier(rest: { tag: number; body: Uint8Array }[]): Uint8Array | null {
  const extensions = rest.find((e) => e.tag === contextConstructed(3));
  if (!extensions) return null;
  const skiOid = oid("2.5.29.14").toHex();
  for (const e of children(readElement(extensions.body).body)) {
    const parts = children(e.body);
    if (parts[0].raw.toHex() !== skiOid) continue;
    return readElement(parts[parts.length - 1].body).body.slice();
  }
  return null;
}

/** A SAN entry: dNSName [2], or iPAddress [7] for an IPv4 or IPv6 literal. */
function generalName(name: string): Uint8Array {
  const ip = ipLiteralBytes(name);
  if (ip === null && name.includes(":")) throw new TypeError(`${name} is not an IP address`);
  return ip
    ? tlv(contextPrimitive(7), ip)
    : tlv(contextPrimitive(2), new TextEncoder().encode(name));
}

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  return prefix.every((b, i) => bytes[i] === b);
}

/** 16 random bytes, the top bit clear and the next set: a positive 16-byte INTEGER. */
function randomSerial(): Uint8Array {
  const serial = crypto.getRandomValues(new Uint8Array(16));
  serial[0] = (serial[0] & 0x7f) | 0x40;
  return serial;
}

/** DER as a PEM certificate: 64-character base64 lines between the RFC 7468 labels. */
function certificatePem(der: Uint8Array): string {
  const lines = der.toBase64().match(/.{1,64}/g)!.join("\n");
  return `-----BEGIN CERTIFICATE-----\n${lines}\n-----END CERTIFICATE-----`;
}
