/**
 * docs/protocol.md against the code, so that it cannot drift again: every wire message type
 * with its code, and every control message with its direction, and nothing the code does not
 * know.
 */
import { assertEquals } from "../support/assert.ts";
import { MessageType } from "../../agent/link/wire.ts";
import { HOST_MESSAGE_TYPES, PROXY_MESSAGE_TYPES } from "../../agent/control/messages.ts";

const doc = await Deno.readTextFile(new URL("../../docs/protocol.md", import.meta.url));

/** The rows of the markdown table whose header line starts with `header`. */
function table(header: string): string[][] {
  const lines = doc.split("\n");
  const start = lines.findIndex((l) => l.startsWith(header));
  if (start < 0) throw new Error(`docs/protocol.md has no table headed ${header}`);
  const rows: string[][] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith("|")) break;
    rows.push(line.split("|").slice(1, -1).map((c) => c.trim()));
  }
  return rows;
}

Deno.test("docs/protocol.md: the framing table lists every wire message type with its code", () => {
  const documented = table("| type | name | body |").map(([code, name]) => `${name}=${code}`);
  const actual = Object.entries(MessageType).map(([name, code]) =>
    `${name}=0x${code.toString(16).padStart(2, "0")}`
  );
  assertEquals(documented.sort(), actual.sort());
});

Deno.test("docs/protocol.md: the control table lists every message, with its direction", () => {
  const documented: string[] = [];
  for (const [types, direction] of table("| type | direction | fields |")) {
    for (const t of types.matchAll(/`([a-z-]+)`/g)) documented.push(`${t[1]}: ${direction}`);
  }
  const actual = [
    ...PROXY_MESSAGE_TYPES.map((t) => `${t}: proxy -> host`),
    ...HOST_MESSAGE_TYPES.map((t) => `${t}: host -> proxy`),
  ];
  assertEquals(documented.sort(), actual.sort());
});
