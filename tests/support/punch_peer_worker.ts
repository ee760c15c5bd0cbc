/**
 * The other side of a hole punch for tests/agent/fastpath/punch_test.ts, on its own thread:
 * on loopback a refused SYN comes back at once, so the two connects only meet when they run
 * in parallel, as two hosts do. It punches, runs TLS as the server with the certificate it is
 * given, accepts the ticket, echoes one message and reports.
 */
/// <reference lib="deno.worker" />
import { punchedTls, punchTcp } from "../../agent/fastpath/punch.ts";
import { acceptPeer } from "../../agent/fastpath/handshake.ts";
import { TicketBook } from "../../agent/fastpath/tickets.ts";

self.onmessage = async (e: MessageEvent) => {
  const o = e.data as {
    localPort: number;
    remotePort: number;
    certPem: string;
    keyPem: string;
    ticket: string;
  };
  const remote = { hostname: "127.0.0.1", port: o.remotePort };
  try {
    const socket = await punchTcp({ remote, localPort: o.localPort, timeoutMs: 8000, retryMs: 1 });
    const conn = await punchedTls(socket, {
      role: "tls-server",
      remote,
      certPem: o.certPem,
      keyPem: o.keyPem,
      serverName: "",
      caPem: "",
      timeoutMs: 5000,
    });
    const book = new TicketBook({ max: 4 });
    book.expect(o.ticket, "h1", 5000, Date.now());
    const accepted = await acceptPeer(conn, {
      self: "h2",
      book,
      timeoutMs: 5000,
      ticketWaitMs: 100,
    });
    if (!("peer" in accepted)) throw new Error("a probe, not a peer");
    const buf = new Uint8Array(64);
    const n = await accepted.handshake.conn.read(buf);
    await accepted.handshake.conn.write(buf.subarray(0, n ?? 0));
    self.postMessage({ ok: true, peer: accepted.peer });
    setTimeout(() => accepted.handshake.conn.close(), 200);
  } catch (err) {
    self.postMessage({ ok: false, error: (err as Error).message });
  }
};
