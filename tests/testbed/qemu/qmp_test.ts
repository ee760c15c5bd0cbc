/**
 * The QMP client and the guest console against fakes on a Unix socket: replies matched to
 * their commands with events interleaved, errors with QMP's class, lines split across reads,
 * QEMU's event clock; the console's exit codes and a transcript free of echo and prompts.
 */
import { assert, assertEquals } from "../../support/assert.ts";
import { parseQmpLine, QmpClient, QmpError } from "../../../testbed/qemu/qmp.ts";
import { GuestConsole } from "../../../testbed/qemu/guest_console.ts";

const enc = new TextEncoder();

/** Serves one connection on a fresh Unix socket with `talk`; returns the path and a stopper. */
async function fakeServer(
  talk: (conn: Deno.UnixConn, lines: AsyncIterable<string>) => Promise<void>,
): Promise<{ path: string; done: Promise<void>; cleanup(): Promise<void> }> {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/sock`;
  const listener = Deno.listen({ transport: "unix", path });
  const done = (async () => {
    const conn = await listener.accept();
    async function* lines() {
      let buf = "";
      const dec = new TextDecoder();
      for await (const chunk of conn.readable) {
        buf += dec.decode(chunk, { stream: true });
        for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
          yield buf.slice(0, nl);
          buf = buf.slice(nl + 1);
        }
      }
    }
    try {
      await talk(conn, lines());
    } finally {
      try {
        conn.close();
      } catch { /* closed by the reader */ }
    }
  })();
  return {
    path,
    done,
    async cleanup() {
      listener.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("qmp: parses QEMU's four kinds of message and ignores the rest", () => {
  assertEquals(parseQmpLine('{"QMP": {"version": {}, "capabilities": []}}'), { kind: "greeting" });
  assertEquals(parseQmpLine('{"return": {"status": "running"}, "id": 4}'), {
    kind: "return",
    id: 4,
    value: { status: "running" },
  });
  assertEquals(parseQmpLine('{"error": {"class": "GenericError", "desc": "no"}, "id": 5}'), {
    kind: "error",
    id: 5,
    errorClass: "GenericError",
    desc: "no",
  });
  assertEquals(
    parseQmpLine(
      '{"event": "RESUME", "timestamp": {"seconds": 1700000000, "microseconds": 250500}}',
    ),
    { kind: "event", event: { event: "RESUME", at: 1700000000250.5, data: {} } },
  );
  assertEquals(parseQmpLine("not json"), null);
  assertEquals(parseQmpLine('{"return": {}}'), null, "a reply without our id");
  assertEquals(parseQmpLine("42"), null);
});

Deno.test("qmp: commands get their own replies, events in between are kept, errors carry the class", async () => {
  const server = await fakeServer(async (conn, lines) => {
    const send = (o: unknown) => conn.write(enc.encode(JSON.stringify(o) + "\r\n"));
    await send({ QMP: { version: {}, capabilities: ["oob"] } });
    for await (const line of lines) {
      const m = JSON.parse(line);
      if (m.execute === "qmp_capabilities") await send({ return: {}, id: m.id });
      else if (m.execute === "query-status") {
        // An event first, and the reply split in two writes.
        await send({ event: "STOP", timestamp: { seconds: 10, microseconds: 5 }, data: {} });
        const text = JSON.stringify({ return: { status: "paused" }, id: m.id }) + "\r\n";
        await conn.write(enc.encode(text.slice(0, 7)));
        await new Promise((r) => setTimeout(r, 20));
        await conn.write(enc.encode(text.slice(7)));
      } else if (m.execute === "cont") {
        await send({ return: {}, id: m.id });
        await new Promise((r) => setTimeout(r, 30));
        await send({ event: "RESUME", timestamp: { seconds: 11, microseconds: 0 }, data: {} });
      } else {
        await send({ error: { class: "CommandNotFound", desc: `no ${m.execute}` }, id: m.id });
      }
    }
  });
  const qmp = await QmpClient.connect(server.path, 2000);
  try {
    const [a, b] = await Promise.all([
      qmp.execute<{ status: string }>("query-status"),
      qmp.execute("bogus").catch((e) => e),
    ]);
    assertEquals(a.status, "paused");
    assert(b instanceof QmpError, String(b));
    assertEquals(b.errorClass, "CommandNotFound");
    assert(b.message.includes("Cannot run QMP bogus: CommandNotFound: no bogus"), b.message);
    assertEquals(qmp.events.map((e) => [e.event, e.at]), [["STOP", 10000.005]]);
    const since = qmp.events.length;
    await qmp.execute("cont");
    const resumed = await qmp.waitEvent("RESUME", 2000, since);
    assertEquals(resumed.at, 11000);
    // An event already seen is found again at once; one never sent times out by name.
    assertEquals((await qmp.waitEvent("STOP", 10)).at, 10000.005);
    const err = await qmp.waitEvent("SHUTDOWN", 50).catch((e) => e);
    assert(String(err).includes("the SHUTDOWN event"), String(err));
  } finally {
    await qmp.close();
    await server.done;
    await server.cleanup();
  }
});

Deno.test("guest console: exit codes, output without echo or prompt, commands in order", async () => {
  const server = await fakeServer(async (conn, lines) => {
    let echo = true;
    const write = (s: string) => conn.write(enc.encode(s));
    await write("\r\n/ # ");
    for await (const line of lines) {
      // A tty echoes what it receives until `stty -echo` ran.
      if (echo) await write(line + "\r\n");
      const [, cmd, n] = /^(.*); echo "@@(\d+):\$\?@@"$/.exec(line)!;
      let code = 0;
      if (cmd === "stty -echo") echo = false;
      else if (cmd === "false") code = 1;
      else await write(`\x1b[6n${cmd.replace(/^echo /, "")}\r\n`);
      await write(`@@${n}:${code}@@\r\n/ # `);
    }
  });
  const c = await GuestConsole.connect(server.path, 2000);
  try {
    const [a, b, f] = await Promise.all([
      c.run("echo hello"),
      c.run("echo two lines"),
      c.run("false"),
    ]);
    assertEquals(a, { code: 0, output: "hello" });
    assertEquals(b, { code: 0, output: "two lines" });
    assertEquals(f, { code: 1, output: "" });
  } finally {
    await c.close();
    await server.done;
    await server.cleanup();
  }
});
