/**
 * An accepted TLS connection closed before its peer said anything is closed for real: Deno
 * alone keeps such a socket open (waiting to finish the handshake), so a stalled client held
 * a proxy's descriptor for ever, and a join storm ran the proxy out of them.
 */
import { assertEquals } from "../../support/assert.ts";
import { tlsTransport } from "../../../agent/link/transport.ts";
import { loadOrCreatePki } from "../../../proxy/pki/ca.ts";

Deno.test("transport: closing an accepted connection before its handshake ends the TCP connection", async () => {
  const dir = await Deno.makeTempDir();
  const pki = await loadOrCreatePki(dir);
  const listener = tlsTransport.listen({ hostname: "127.0.0.1", port: 0 }, {
    certPem: pki.proxyCertPem,
    keyPem: pki.proxyKeyPem,
  });
  const accepted = listener.accept();
  // A client that connects and never starts TLS (stalled, or refused before it spoke).
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const server = await accepted;
  server.close();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const end = await Promise.race([
    client.read(new Uint8Array(64)).then((n) => (n === null ? "closed" : "data"), () => "closed"),
    new Promise((r) => timer = setTimeout(() => r("still open after 2 s"), 2000)),
  ]).finally(() => clearTimeout(timer));
  client.close();
  listener.close();
  await Deno.remove(dir, { recursive: true });
  assertEquals(end, "closed");
});
