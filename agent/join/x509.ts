/**
 * The X.509 library (npm:@peculiar/x509), loaded where both sides need it: the proxy's CA
 * issues certificates with it, and a host (agent doctor) reads one's validity.
 *
 * @module
 */

import type * as X509 from "@peculiar/x509";

/**
 * The loaded @peculiar/x509 module. The library resolves its algorithms through tsyringe,
 * which refuses to load unless a Reflect metadata API exists; Deno has none and the import map
 * holds no polyfill. So the library is imported on first use, after
 * {@linkcode installReflectMetadata}, rather than statically (a static import would run
 * before any code of ours).
 */
let x509Module: Promise<typeof X509> | undefined;

export function loadX509(): Promise<typeof X509> {
  return x509Module ??= (installReflectMetadata(), import("@peculiar/x509"));
}

/**
 * Installs the three `Reflect` metadata functions tsyringe calls, unless a real polyfill
 * (reflect-metadata, core-js) is already there. tsyringe only stores and reads constructor
 * parameter lists with them, so a per-object map is all it takes.
 */
function installReflectMetadata(): void {
  const reflect = Reflect as unknown as Record<string, unknown>;
  if (typeof reflect.getMetadata === "function") return;
  const store = new WeakMap<object, Map<unknown, unknown>>();
  reflect.defineMetadata = (key: unknown, value: unknown, target: object) => {
    let entries = store.get(target);
    if (entries === undefined) store.set(target, entries = new Map());
    entries.set(key, value);
  };
  reflect.getOwnMetadata = (key: unknown, target: object) => store.get(target)?.get(key);
  reflect.getMetadata = (key: unknown, target: object) => {
    for (let at: object | null = target; at !== null; at = Object.getPrototypeOf(at)) {
      const entries = store.get(at);
      if (entries?.has(key)) return entries.get(key);
    }
    return undefined;
  };
}

/** What the proxy records of a certificate it issued. */
export interface CertificateInfo {
  /** Serial number, hex. */
  serial: string;
  /** End of validity, ms since the epoch. */
  notAfter: number;
}

/**
 * The serial and expiry of a PEM certificate.
 *
 * @example
 * ```ts
 * import { certificateInfo } from "./x509.ts";
 * const bad = await certificateInfo("not a certificate").then(() => false, () => true);
 * if (!bad) throw new Error("garbage parsed as a certificate");
 * ```
 */
export async function certificateInfo(pem: string): Promise<CertificateInfo> {
  const x509 = await loadX509();
  const cert = new x509.X509Certificate(pem);
  return { serial: cert.serialNumber, notAfter: cert.notAfter.getTime() };
}
