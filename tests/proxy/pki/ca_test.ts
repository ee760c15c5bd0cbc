import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { generateHostKey, keyFingerprint, keyTlsName } from "../../../agent/join/host_key.ts";
import { loadOrCreatePki, type ProxyPki } from "../../../proxy/pki/ca.ts";

const FILES = ["ca.key", "ca.crt", "proxy.key", "proxy.crt"];

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "vnet_pki_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * @peculiar/x509 loads only once a Reflect metadata API exists, which ca.ts installs when it
 * first needs the library; so the tests import it after creating a PKI, never statically.
 */
const loadX509 = () => import("@peculiar/x509");

const modeOf = async (path: string) => (await Deno.stat(path)).mode! & 0o777;

/** DER of a single-certificate PEM. */
function der(pem: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.fromBase64(pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, ""));
}

Deno.test("loadOrCreatePki creates the state dir 0700 and every file 0600", async () => {
  await withTempDir(async (dir) => {
    const stateDir = `${dir}/state/nested`;
    await loadOrCreatePki(stateDir);
    assert.equal(await modeOf(stateDir), 0o700);
    for (const name of FILES) assert.equal(await modeOf(`${stateDir}/${name}`), 0o600, name);
    assert.deepEqual([...Deno.readDirSync(stateDir)].map((e) => e.name).sort(), FILES.toSorted());
  });
});

Deno.test("loadOrCreatePki reloads the same CA, hash and proxy certificate", async () => {
  await withTempDir(async (dir) => {
    const first = await loadOrCreatePki(dir);
    const again = await loadOrCreatePki(dir);
    assert.equal(again.caPem, first.caPem);
    assert.equal(again.caHash, first.caHash);
    assert.equal(again.proxyCertPem, first.proxyCertPem);
    assert.equal(again.proxyKeyPem, first.proxyKeyPem);
    assert.equal(first.caHash, createHash("sha256").update(der(first.caPem)).digest("base64url"));
    assert.equal(await Deno.readTextFile(`${dir}/ca.crt`), first.caPem);
  });
});

Deno.test("the CA is a P-256 CA of 10 years; the proxy certificate is a leaf for proxy.vnet", async () => {
  await withTempDir(async (dir) => {
    const pki = await loadOrCreatePki(dir);
    const x509 = await loadX509();
    const ca = new x509.X509Certificate(pki.caPem);
    const proxy = new x509.X509Certificate(pki.proxyCertPem);
    assert.equal(ca.getExtension(x509.BasicConstraintsExtension)?.ca, true);
    assert.equal((ca.publicKey.algorithm as EcKeyAlgorithm).namedCurve, "P-256");
    assert.ok(years(ca) > 9.9 && years(ca) < 10.1, `CA valid ${years(ca)} years`);
    assert.equal(proxy.getExtension(x509.BasicConstraintsExtension)?.ca, false);
    assert.deepEqual(dnsNames(x509, proxy), ["proxy.vnet"]);
    assert.ok(years(proxy) > 0.99 && years(proxy) < 1.01, `proxy valid ${years(proxy)} years`);
    await assertChains(x509, proxy, ca);
    assert.ok(!Deno.inspect(pki).includes("PRIVATE KEY"), "inspect must not show the key");
  });
});

Deno.test("a host certificate chains to the CA and names <host>.host.vnet and its key", async () => {
  await withTempDir(async (dir) => {
    const pki = await loadOrCreatePki(dir);
    const key = generateHostKey();
    const issued = await pki.issueHostCertificate("rack1-node7", key.spkiB64);
    const x509 = await loadX509();
    const cert = new x509.X509Certificate(issued.pem);
    // What the proxy records without parsing is what the certificate says.
    assert.deepEqual(issued.info, {
      serial: cert.serialNumber,
      notAfter: cert.notAfter.getTime(),
    });
    const ca = new x509.X509Certificate(pki.caPem);
    await assertChains(x509, cert, ca);
    assert.deepEqual(dnsNames(x509, cert), [
      "rack1-node7.host.vnet",
      keyTlsName(keyFingerprint(key.spkiB64)),
    ]);
    const days = (cert.notAfter.getTime() - cert.notBefore.getTime()) / 86_400_000;
    assert.ok(days > 364 && days < 366, `a year by default: ${days} days`);
    const short = await pki.issueHostCertificate("rack1-node7", key.spkiB64, {
      lifetimeMs: 3_600_000,
    });
    const hours = (new x509.X509Certificate(short.pem).notAfter.getTime() - Date.now()) / 3_600_000;
    assert.ok(hours > 0.9 && hours <= 1, `the lifetime asked for: ${hours} h`);
    assert.equal(cert.subject, "CN=rack1-node7.host.vnet");
    assert.equal(new Uint8Array(cert.publicKey.rawData).toBase64(), key.spkiB64);
    assert.equal(cert.getExtension(x509.BasicConstraintsExtension)?.ca, false);
    const other = await pki.issueHostCertificate("rack1-node7", key.spkiB64);
    assert.notEqual(new x509.X509Certificate(other.pem).serialNumber, cert.serialNumber);
  });
});

Deno.test("issueHostCertificate refuses bad names and keys other than P-256 ECDSA", async () => {
  await withTempDir(async (dir) => {
    const pki = await loadOrCreatePki(dir);
    const { spkiB64 } = generateHostKey();
    for (const name of ["", "Node7", "node_7", "-node", "node-", "a.b", "x".repeat(64)]) {
      await assert.rejects(pki.issueHostCertificate(name, spkiB64), TypeError, name);
    }
    const spkiOf = async (algorithm: EcKeyGenParams | RsaHashedKeyGenParams | Algorithm) => {
      const pair = await crypto.subtle.generateKey(algorithm, true, ["sign", "verify"]);
      const spki = await crypto.subtle.exportKey("spki", (pair as CryptoKeyPair).publicKey);
      return new Uint8Array(spki).toBase64();
    };
    const wrongKeys = [
      await spkiOf({ name: "ECDSA", namedCurve: "P-384" }),
      await spkiOf({ name: "Ed25519" }),
      await spkiOf({
        name: "RSASSA-PKCS1-v1_5",
        modulusLength: 2048,
        publicExponent: new Uint8Array([1, 0, 1]),
        hash: "SHA-256",
      }),
      "AAAA",
      "not base64",
      spkiB64.replace(/=*$/, ""), // not canonical
      " " + spkiB64,
    ];
    for (const key of wrongKeys) {
      await assert.rejects(pki.issueHostCertificate("node7", key), (error: Error) => {
        assert.ok(error instanceof TypeError);
        assert.match(error.message, /^Cannot use host public key: /);
        return true;
      });
    }
  });
});

Deno.test("a corrupt or incomplete CA is an error, never silently replaced", async () => {
  await withTempDir(async (dir) => {
    await loadOrCreatePki(dir);
    const saved = Object.fromEntries(
      await Promise.all(FILES.map(async (f) => [f, await Deno.readTextFile(`${dir}/${f}`)])),
    );
    const restore = () =>
      Promise.all(FILES.map((f) => Deno.writeTextFile(`${dir}/${f}`, saved[f], { mode: 0o600 })));

    await Deno.writeTextFile(`${dir}/ca.key`, "garbage\n");
    await assert.rejects(loadOrCreatePki(dir), /ca\.key: it is not one PKCS#8 PEM private key/);
    assert.equal(await Deno.readTextFile(`${dir}/ca.key`), "garbage\n", "left for the operator");

    await restore();
    await Deno.writeTextFile(`${dir}/ca.crt`, saved["ca.crt"].replace("BEGIN", "BEGUN"));
    await assert.rejects(loadOrCreatePki(dir), /ca\.crt: it is not one PEM certificate/);

    await restore();
    const lines = saved["ca.crt"].split("\n");
    await Deno.writeTextFile(`${dir}/ca.crt`, [lines[0], lines[1], ...lines.slice(-2)].join("\n"));
    await assert.rejects(loadOrCreatePki(dir), /ca\.crt: its certificate is corrupt/);

    await restore();
    await Deno.remove(`${dir}/ca.crt`);
    await assert.rejects(loadOrCreatePki(dir), /ca\.key exists but .*ca\.crt does not/);

    await restore();
    await Deno.remove(`${dir}/ca.key`);
    await assert.rejects(loadOrCreatePki(dir), /ca\.crt exists but .*ca\.key does not/);

    await restore();
    await Deno.chmod(`${dir}/ca.key`, 0o644);
    await assert.rejects(loadOrCreatePki(dir), /chmod 600/);

    await withTempDir(async (other) => {
      await loadOrCreatePki(other);
      await restore();
      await Deno.copyFile(`${other}/ca.key`, `${dir}/ca.key`);
      await assert.rejects(loadOrCreatePki(dir), /ca\.key is not the key of .*ca\.crt/);
      await restore();
      await Deno.copyFile(`${other}/proxy.crt`, `${dir}/proxy.crt`);
      await Deno.copyFile(`${other}/proxy.key`, `${dir}/proxy.key`);
      await assert.rejects(loadOrCreatePki(dir), /proxy\.crt was not issued by the CA/);
    });

    await restore();
    assert.equal((await loadOrCreatePki(dir)).caPem, saved["ca.crt"]);
  });
});

Deno.test("a missing proxy certificate is issued again under the same CA", async () => {
  await withTempDir(async (dir) => {
    const first = await loadOrCreatePki(dir);
    await Deno.remove(`${dir}/proxy.crt`);
    const again = await loadOrCreatePki(dir);
    assert.equal(again.caHash, first.caHash);
    assert.notEqual(again.proxyCertPem, first.proxyCertPem);
    const x509 = await loadX509();
    await assertChains(
      x509,
      new x509.X509Certificate(again.proxyCertPem),
      new x509.X509Certificate(first.caPem),
    );
  });
});

Deno.test("a proxy certificate that expires within 30 days is issued again", async () => {
  await withTempDir(async (dir) => {
    const first = await loadOrCreatePki(dir);
    const x509 = await loadX509();
    const ca = new x509.X509Certificate(first.caPem);
    const caKey = await crypto.subtle.importKey(
      "pkcs8",
      der(await Deno.readTextFile(`${dir}/ca.key`)),
      { name: "ECDSA", namedCurve: "P-256" },
      false,
      ["sign"],
    );
    const proxyKey = await crypto.subtle.importKey(
      "pkcs8",
      der(first.proxyKeyPem),
      { name: "ECDSA", namedCurve: "P-256" },
      true,
      ["sign"],
    );
    const jwk = await crypto.subtle.exportKey("jwk", proxyKey);
    const publicKey = await crypto.subtle.importKey(
      "jwk",
      { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y },
      { name: "ECDSA", namedCurve: "P-256" },
      true,
      ["verify"],
    );
    const expiring = await x509.X509CertificateGenerator.create({
      subject: "CN=proxy.vnet",
      issuer: ca.subject,
      notBefore: new Date(Date.now() - 300 * 86400_000),
      notAfter: new Date(Date.now() + 10 * 86400_000),
      publicKey,
      signingKey: caKey,
      signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
      extensions: [
        new x509.SubjectAlternativeNameExtension([{ type: "dns", value: "proxy.vnet" }]),
      ],
    });
    await Deno.writeTextFile(`${dir}/proxy.crt`, expiring.toString("pem"));
    const again = await loadOrCreatePki(dir);
    assert.equal(again.caHash, first.caHash);
    const renewed = new x509.X509Certificate(again.proxyCertPem);
    assert.ok(renewed.notAfter.getTime() > Date.now() + 360 * 86400_000, "a fresh year");
    assert.equal(await Deno.readTextFile(`${dir}/proxy.crt`), again.proxyCertPem);
    await assertChains(x509, renewed, ca);
  });
});

Deno.test("TLS: a client trusting the CA accepts proxy.vnet; one trusting another CA does not", async () => {
  await withTempDir(async (dir) => {
    const pki = await loadOrCreatePki(`${dir}/a`);
    const other = await loadOrCreatePki(`${dir}/b`);
    await withTlsServer(pki.proxyCertPem, pki.proxyKeyPem, async (port) => {
      assert.equal(await tlsEcho(port, "proxy.vnet", pki.caPem), "pong");
      await assert.rejects(tlsEcho(port, "proxy.vnet", other.caPem), /certificate/i);
      await assert.rejects(tlsEcho(port, "other.vnet", pki.caPem), /certificate/i);
    });
  });
});

Deno.test("TLS: a host serves its certificate to a peer that trusts the CA", async () => {
  await withTempDir(async (dir) => {
    const pki: ProxyPki = await loadOrCreatePki(dir);
    const key = generateHostKey();
    const certPem = (await pki.issueHostCertificate("node7", key.spkiB64)).pem;
    await withTlsServer(certPem, key.keyPem, async (port) => {
      assert.equal(await tlsEcho(port, "node7.host.vnet", pki.caPem), "pong");
      await assert.rejects(tlsEcho(port, "node8.host.vnet", pki.caPem), /certificate/i);
    });
  });
});

Deno.test("TLS: a server identity answers for its IP addresses and DNS names", async () => {
  await withTempDir(async (dir) => {
    const pki: ProxyPki = await loadOrCreatePki(dir);
    const id = pki.issueServerIdentity(["127.0.0.1", "::1", "proxy.vnet"], 3_600_000);
    const x509 = await loadX509();
    const san = new x509.X509Certificate(id.certPem).getExtension(
      x509.SubjectAlternativeNameExtension,
    )!;
    assert.deepEqual(san.names.items.map((n) => [n.type, n.value]), [
      ["ip", "127.0.0.1"],
      ["ip", "::1"],
      ["dns", "proxy.vnet"],
    ]);
    await withTlsServer(id.certPem, id.keyPem, async (port) => {
      assert.equal(await tlsEcho(port, "127.0.0.1", pki.caPem), "pong");
      assert.equal(await tlsEcho(port, "proxy.vnet", pki.caPem), "pong");
      await assert.rejects(tlsEcho(port, "127.0.0.2", pki.caPem), /certificate/i);
    });
  });
});

type X509 = Awaited<ReturnType<typeof loadX509>>;

async function assertChains(
  x509: X509,
  leaf: InstanceType<X509["X509Certificate"]>,
  ca: InstanceType<X509["X509Certificate"]>,
): Promise<void> {
  const chain = await new x509.X509ChainBuilder({ certificates: [ca] }).build(leaf);
  assert.equal(chain.length, 2, "leaf -> CA");
  assert.equal(chain[1].serialNumber, ca.serialNumber);
  assert.ok(await leaf.verify({ publicKey: ca.publicKey, date: new Date() }), "signed by the CA");
  assert.equal(leaf.issuer, ca.subject);
}

function dnsNames(x509: X509, cert: InstanceType<X509["X509Certificate"]>): string[] {
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  return san?.names.items.filter((n) => n.type === "dns").map((n) => n.value) ?? [];
}

function years(cert: { notBefore: Date; notAfter: Date }): number {
  return (cert.notAfter.getTime() - cert.notBefore.getTime()) / (365.25 * 24 * 3600 * 1000);
}

/** Runs a loopback TLS server answering "pong" to every connection while `fn` runs. */
async function withTlsServer(
  cert: string,
  key: string,
  fn: (port: number) => Promise<void>,
): Promise<void> {
  const listener = Deno.listenTls({ hostname: "127.0.0.1", port: 0, cert, key });
  const serving = (async () => {
    for await (const conn of listener) {
      try {
        await conn.handshake();
        await conn.write(new TextEncoder().encode("pong"));
      } catch {
        /* the client refused our certificate */
      } finally {
        conn.close();
      }
    }
  })();
  try {
    await fn(listener.addr.port);
  } finally {
    listener.close();
    await serving;
  }
}

/** Connects as the brief says hosts do; returns what the server sent. */
async function tlsEcho(port: number, hostname: string, caPem: string): Promise<string> {
  const tcp = await Deno.connect({ hostname: "127.0.0.1", port });
  const conn = await Deno.startTls(tcp, { hostname, caCerts: [caPem] });
  try {
    await conn.handshake();
    const buf = new Uint8Array(16);
    const n = await conn.read(buf);
    return new TextDecoder().decode(buf.subarray(0, n ?? 0));
  } finally {
    conn.close();
  }
}
