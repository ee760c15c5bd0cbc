import { assertEquals } from "../support/assert.ts";
import { findTcpSocket, setTcpNoDelay, tcpNoDelay, unreadBytes } from "../../ffi/socket.ts";

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

Deno.test("socket: unreadBytes says what the kernel holds that the process has not read", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const server = await listener.accept();
  try {
    const fd = findTcpSocket(server.localAddr as Deno.NetAddr, server.remoteAddr as Deno.NetAddr);
    assertEquals(unreadBytes(fd), 0);
    await client.write(new Uint8Array(100));
    for (let i = 0; i < 100 && unreadBytes(fd) < 100; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assertEquals(unreadBytes(fd), 100, "sent, not read");
    let read = 0;
    while (read < 100) read += (await server.read(new Uint8Array(100))) ?? 100;
    assertEquals(unreadBytes(fd), 0, "read");
    assertEquals(unreadBytes(-1), -1, "no descriptor");
  } finally {
    client.close();
    server.close();
    listener.close();
  }
});
