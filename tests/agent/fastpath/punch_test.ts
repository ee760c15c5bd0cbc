/**
 * A hole punch on loopback: two sides connect to each other from fixed ports at once (TCP
 * simultaneous open, or one side's SYN meeting the other's), TLS runs over the result in the
 * proxy's roles, and the fast-path handshake (ticket) finishes. Also: a dial that nothing
 * answers ends within its bound instead of the kernel's two minutes.
 */
import { assert, assertEquals, assertRejects } from "../../support/assert.ts";
import { punchedTls, PunchFailed, punchTcp } from "../../../agent/fastpath/punch.ts";
import { helloPeer } from "../../../agent/fastpath/handshake.ts";
import * as net from "node:net";
import { generateHostKey, keyFingerprint, keyTlsName } from "../../../agent/join/host_key.ts";
import { loadOrCreatePki } from "../../../proxy/pki/ca.ts";
import { tlsTransport } from "../../../agent/link/transport.ts";

/** Two free ports on loopback (bound and released). */
function freePorts(): [number, number] {
  const a = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const b = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const ports: [number, number] = [a.addr.port, b.addr.port];
  a.close();
  b.close();
  return ports;
}

Deno.test("punch: both sides connect at once, TLS in the proxy's roles, then the ticket", async () => {
  const dir = await Deno.makeTempDir();
  const worker = new Worker(new URL("../../support/punch_peer_worker.ts", import.meta.url), {
    type: "module",
  });
  try {
    const pki = await loadOrCreatePki(dir);
    const key2 = generateHostKey();
    const cert2 = (await pki.issueHostCertificate("h2", key2.spkiB64)).pem;
    const fp2 = keyFingerprint(key2.spkiB64);
    const [p1, p2] = freePorts();
    const lo = (port: number) => ({ hostname: "127.0.0.1", port });
    const reply = new Promise<{ ok: boolean; peer?: string; error?: string }>((r) =>
      worker.onmessage = (e) => r(e.data)
    );
    worker.postMessage({
      localPort: p2,
      remotePort: p1,
      certPem: cert2,
      keyPem: key2.keyPem,
      ticket: "ticket-1",
    });
    const s1 = await punchTcp({ remote: lo(p2), localPort: p1, timeoutMs: 8000, retryMs: 1 });
    assertEquals(s1.localPort, p1);
    const c1 = await punchedTls(s1, {
      role: "tls-client",
      remote: lo(p2),
      certPem: "",
      keyPem: "",
      serverName: keyTlsName(fp2),
      caPem: pki.caPem,
      timeoutMs: 5000,
    });
    const dialed = await helloPeer(c1, lo(p2), {
      self: "h1",
      peer: "h2",
      ticket: "ticket-1",
      timeoutMs: 5000,
    });
    // Bytes cross the punched, encrypted connection both ways.
    await dialed.conn.write(new TextEncoder().encode("ping"));
    const buf = new Uint8Array(16);
    const n = await dialed.conn.read(buf);
    assertEquals(new TextDecoder().decode(buf.subarray(0, n!)), "ping");
    assertEquals(await reply, { ok: true, peer: "h1" });
    dialed.conn.close();
  } finally {
    worker.terminate();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("punch: a tls-client refuses a peer whose certificate is not the expected key's", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const pki = await loadOrCreatePki(dir);
    const key2 = generateHostKey();
    const cert2 = (await pki.issueHostCertificate("h2", key2.spkiB64)).pem;
    const other = keyFingerprint((generateHostKey()).spkiB64);
    // Any connected pair of sockets will do: the roles are what is tested.
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const port = (server.address() as net.AddressInfo).port;
    const accepted = new Promise<net.Socket>((r) => server.once("connection", r));
    const s1 = net.connect({ host: "127.0.0.1", port });
    await new Promise((r) => s1.once("connect", r));
    const s2 = await accepted;
    const lo = { hostname: "127.0.0.1", port };
    const serving = punchedTls(s2, {
      role: "tls-server",
      remote: lo,
      certPem: cert2,
      keyPem: key2.keyPem,
      serverName: "",
      caPem: pki.caPem,
      timeoutMs: 1000,
    }).then((c) => c.close(), () => {});
    await assertRejects(() =>
      punchedTls(s1, {
        role: "tls-client",
        remote: lo,
        certPem: "",
        keyPem: "",
        serverName: keyTlsName(other),
        caPem: pki.caPem,
        timeoutMs: 1000,
      }), Error);
    s2.destroy();
    await serving;
    server.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("punch: nobody on the other side -> PunchFailed within the time given", async () => {
  const [p1, p2] = freePorts();
  const t0 = performance.now();
  const e = await assertRejects(
    () => punchTcp({ remote: { hostname: "127.0.0.1", port: p2 }, localPort: p1, timeoutMs: 300 }),
    PunchFailed,
  );
  assert(performance.now() - t0 < 2000, "bounded");
  assert(/ECONNREFUSED/.test(e.message), e.message);
});

Deno.test("dial: an address that never answers fails within the dial timeout", async () => {
  // TEST-NET-1 (RFC 5737) is never routed: the SYN is dropped or refused at once. Either way
  // the dial must not wait for the kernel's retries (about 127 s).
  const t0 = performance.now();
  await assertRejects(() =>
    tlsTransport.dial({ hostname: "192.0.2.1", port: 9 }, {
      serverName: "x.vnet",
      caPem: "",
      timeoutMs: 300,
    }), Error);
  assert(performance.now() - t0 < 3000, `took ${performance.now() - t0} ms`);
});
