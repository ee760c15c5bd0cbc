/**
 * Reading the proxy's PEM files (certificates and PKCS#8 keys) with errors that name the file
 * and what to do, never its contents: the CA's and the proxy's own key material are read at
 * every start.
 *
 * @module
 */

import type * as X509 from "@peculiar/x509";
import { loadX509 } from "../../agent/join/x509.ts";
import { readSecretFile } from "../../agent/secret_file.ts";
import { HOST_KEY_ALGORITHM } from "../../agent/join/host_key.ts";

/** The signature the proxy's keys make (ECDSA P-256 with SHA-256). */
export const SIGNING: EcdsaParams = { name: "ECDSA", hash: "SHA-256" };

/** Reads the one PEM certificate in `path`; `fix` says what to do when it is unusable. */
export async function readCertificate(path: string, fix: string): Promise<X509.X509Certificate> {
  const x509 = await loadX509();
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new Error(`Cannot read ${path}: ${messageOf(error)}. Check its permissions`, {
      cause: error,
    });
  }
  const blocks = pemBlocks(x509, text);
  if (blocks.length !== 1 || blocks[0].type !== x509.PemConverter.CertificateTag) {
    throw new Error(`Cannot load ${path}: it is not one PEM certificate. ${fix}`);
  }
  try {
    return new x509.X509Certificate(blocks[0].rawData);
  } catch (error) {
    throw new Error(
      `Cannot load ${path}: its certificate is corrupt (${messageOf(error)}). ${fix}`,
      {
        cause: error,
      },
    );
  }
}

/** Reads the PKCS#8 PEM key in `path` (a secret file, 0600). */
export async function readPrivateKey(path: string, fix: string): Promise<CryptoKey> {
  return await importPrivateKey(await readSecretFile(path), path, fix);
}

/** Imports a P-256 PKCS#8 PEM key; errors name the file, never its contents. */
export async function importPrivateKey(pem: string, path: string, fix: string): Promise<CryptoKey> {
  const x509 = await loadX509();
  const blocks = pemBlocks(x509, pem);
  if (blocks.length !== 1 || blocks[0].type !== x509.PemConverter.PrivateKeyTag) {
    throw new Error(`Cannot load ${path}: it is not one PKCS#8 PEM private key. ${fix}`);
  }
  try {
    return await crypto.subtle.importKey("pkcs8", blocks[0].rawData, HOST_KEY_ALGORITHM, false, [
      "sign",
    ]);
  } catch (error) {
    throw new Error(`Cannot load ${path}: it is not an ECDSA P-256 private key. ${fix}`, {
      cause: error,
    });
  }
}

/** PEM blocks of `text`, or none when it is not PEM at all. */
export function pemBlocks(x509: typeof X509, text: string): X509.PemStruct[] {
  try {
    return x509.PemConverter.decodeWithHeaders(text);
  } catch {
    return [];
  }
}

/** True when `key` signs what `cert`'s public key verifies. */
export async function keyMatches(key: CryptoKey, cert: X509.X509Certificate): Promise<boolean> {
  const probe = new TextEncoder().encode("vnet key check");
  const signature = await crypto.subtle.sign(SIGNING, key, probe);
  const publicKey = await cert.publicKey.export(HOST_KEY_ALGORITHM, ["verify"]);
  return await crypto.subtle.verify(SIGNING, publicKey, signature, probe);
}

/** Whether `path` exists; errors other than "not found" are explained. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw new Error(
      `Cannot check ${path}: ${messageOf(error)}. Check the state directory's permissions`,
      {
        cause: error,
      },
    );
  }
}

/** An error's message, or the thrown value as text. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
