import { assertEquals } from "../support/assert.ts";
import { setTcpNoDelay, tcpNoDelay } from "../../ffi/socket.ts";

Deno.test("socket: TCP_NODELAY can be set on an accepted connection Deno gives no fd for", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const server = await listener.accept();
  try {
    const local = server.localAddr as Deno.NetAddr;
    const remote = server.remoteAddr as Deno.NetAddr;
    assertEquals(tcpNoDelay(local, remote), false, "Deno accepts with Nagle on");
    assertEquals(setTcpNoDelay(local, remote), true);
    assertEquals(tcpNoDelay(local, remote), true);
    assertEquals(setTcpNoDelay(local, { hostname: "127.0.0.1", port: 1 }), false, "unknown peer");
  } finally {
    client.close();
    server.close();
    listener.close();
  }
});
