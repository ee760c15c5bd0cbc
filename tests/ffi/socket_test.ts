import { assertEquals } from "../support/assert.ts";
import {
  addressBytes,
  findTcpSocket,
  setTcpNoDelay,
  sockaddrIs,
  tcpNoDelay,
  unreadBytes,
} from "../../ffi/socket.ts";

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

/** A sockaddr_in (family 2) or sockaddr_in6 (family 10) as the kernel fills it in. */
function sockaddr(address: string, port: number): Uint8Array {
  const out = new Uint8Array(28);
  const v4 = /^\d+\.\d+\.\d+\.\d+$/.test(address);
  out[0] = v4 ? 2 : 10;
  out[2] = port >> 8;
  out[3] = port & 0xff;
  if (v4) out.set(address.split(".").map(Number), 4);
  else out.set(addressBytes(address)!, 8);
  return out;
}

Deno.test("socket: a connection is found by address and port, not by port alone", () => {
  const peer = addressBytes("192.0.2.7");
  assertEquals(sockaddrIs(sockaddr("192.0.2.7", 40000), peer, 40000), true);
  assertEquals(sockaddrIs(sockaddr("192.0.2.8", 40000), peer, 40000), false, "another host");
  assertEquals(sockaddrIs(sockaddr("192.0.2.7", 40001), peer, 40000), false, "another port");
  // A dual-stack listener sees an IPv4 peer as IPv4-mapped IPv6; Deno may write it either way.
  assertEquals(sockaddrIs(sockaddr("::ffff:192.0.2.7", 40000), peer, 40000), true);
  const v6 = addressBytes("2001:db8::7%eth0");
  assertEquals(sockaddrIs(sockaddr("2001:db8::7", 40000), v6, 40000), true);
  assertEquals(sockaddrIs(sockaddr("2001:db8::8", 40000), v6, 40000), false);
  assertEquals(sockaddrIs(sockaddr("192.0.2.7", 40000), v6, 40000), false);
  // Not an address literal: the port alone decides, as before.
  assertEquals(sockaddrIs(sockaddr("192.0.2.8", 40000), null, 40000), true);
  for (const bad of ["1::2::3", "1:2:3:4:5:6:7:8:9", "300.1.1.1", "::g", "1:2"]) {
    assertEquals(addressBytes(bad), null, bad);
  }
});
