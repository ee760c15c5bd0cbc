/**
 * A host's status API: the token rule of the proxy's API, also on loopback; off loopback only
 * over TLS with the host's own certificate (from its first join on).
 */
import { assert, assertEquals } from "../support/assert.ts";
import { startOverlay } from "../support/sim.ts";

/** A raw HTTP/1.1 GET over `conn`; the status code. */
async function get(conn: Deno.Conn, host: string, path: string, token?: string): Promise<number> {
  const auth = token ? `Authorization: Bearer ${token}\r\n` : "";
  const req = `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${auth}Connection: close\r\n\r\n`;
  await conn.write(new TextEncoder().encode(req));
  const buf = new Uint8Array(1024);
  const n = await conn.read(buf);
  conn.close();
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(new TextDecoder().decode(buf.subarray(0, n ?? 0)))?.[1]);
}

Deno.test("sim host API: on loopback it needs the token from the host's state dir", async () => {
  const sim = await startOverlay({
    hosts: 1,
    host: () => ({ api: { hostname: "127.0.0.1", port: 0 } }),
  });
  try {
    const at = sim.hosts[0].apiAddress!;
    const anonymous = await fetch(`http://127.0.0.1:${at.port}/api/status`);
    await anonymous.body?.cancel();
    assertEquals(anonymous.status, 401, "no token, no status");
    const own = await sim.hostApiFetch(0, "/api/status");
    assertEquals(own.status, 200);
    assertEquals((await own.json()).name, "h0");
  } finally {
    await sim.close();
  }
});

Deno.test("sim host API: off loopback it speaks TLS with the host's certificate, after its join", async () => {
  const sim = await startOverlay({
    hosts: 1,
    host: () => ({ api: { hostname: "0.0.0.0", port: 0 } }),
  });
  try {
    await sim.until(() => sim.hosts[0].apiAddress !== null, "the API served");
    const port = sim.hosts[0].apiAddress!.port;
    const host = `127.0.0.1:${port}`;
    // In clear: no answer.
    const plain = await get(await Deno.connect({ hostname: "127.0.0.1", port }), host, "/").catch(
      () => 0,
    );
    assert(!(plain >= 200 && plain < 400), `answered in clear: ${plain}`);
    // Over TLS, verified as h0 by the proxy's CA; still the token rule.
    const tlsConn = async () =>
      await Deno.startTls(await Deno.connect({ hostname: "127.0.0.1", port }), {
        hostname: "h0.host.vnet",
        caCerts: [sim.proxy.caPem],
      });
    assertEquals(await get(await tlsConn(), host, "/api/status"), 401);
    const token = (await Deno.readTextFile(`${sim.hostStateDir(0)}/api.token`)).trim();
    assertEquals(await get(await tlsConn(), host, "/api/status", token), 200);
  } finally {
    await sim.close();
  }
});
