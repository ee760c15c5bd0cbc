/**
 * The CLI's subcommands against a fake API (fake_api.ts): for every command, the words it
 * prints, the exit code and the requests it sends, compared with testdata/commands_golden.json
 * (recorded from the CLI before it became a table of commands, so a change of output shows).
 */
import { assertEquals } from "../../support/assert.ts";
import { runCommand } from "../../../proxy/cli/commands.ts";
import { LIST_PAGE } from "../../../proxy/cli/pages.ts";
import { STATUS, VMS } from "./api_replies.ts";
import { type Asked, fakeApi } from "./fake_api.ts";

interface GoldenCase {
  command: string[];
  flags: { json?: boolean; dot?: boolean };
  code: number;
  out: string[];
  err: string[];
  asked: Partial<Asked>[];
}

const GOLDEN: GoldenCase[] = JSON.parse(
  await Deno.readTextFile(new URL("./testdata/commands_golden.json", import.meta.url)),
);

Deno.test("cli: every command prints, exits and asks as recorded", async () => {
  const api = await fakeApi();
  try {
    for (const c of GOLDEN) {
      const out: string[] = [];
      const err: string[] = [];
      const start = api.asked.length;
      const code = await runCommand(
        api.invocation(c.command, c.flags),
        (s) => out.push(s),
        (s) => err.push(s),
      );
      const what = `agent ${c.command.join(" ")} ${JSON.stringify(c.flags)}`;
      assertEquals({ code, out, err }, { code: c.code, out: c.out, err: c.err }, what);
      // The golden file went through JSON: an absent body is a missing key there.
      const asked = JSON.parse(JSON.stringify(api.asked.slice(start)));
      assertEquals(asked, c.asked, `${what}: requests`);
    }
  } finally {
    await api.close();
  }
});

/** Runs `agent COMMAND --json` against `api`; its exit code and the JSON it printed. */
async function json(api: Awaited<ReturnType<typeof fakeApi>>, command: string) {
  const out: string[] = [];
  const code = await runCommand(
    api.invocation([command], { json: true }),
    (s) => out.push(s),
    () => {},
  );
  return { code, shown: JSON.parse(out.join("\n")) };
}

Deno.test("cli: agent vms reads a long list a page at a time, and shows all of it", async () => {
  const n = LIST_PAGE * 2 + 3;
  const vms = Array.from({ length: n }, (_, i) => ({
    ...VMS[0],
    mac: `02:00:00:${(i >> 16).toString(16).padStart(2, "0")}:${
      ((i >> 8) & 255).toString(16).padStart(2, "0")
    }:${(i & 255).toString(16).padStart(2, "0")}`,
  }));
  const api = await fakeApi({ vms });
  try {
    const { code, shown } = await json(api, "vms");
    assertEquals(code, 0);
    assertEquals(shown.map((v: { mac: string }) => v.mac), vms.map((v) => v.mac));
    assertEquals(
      api.asked.map((a) => a.path),
      [0, 1, 2].map((p) => `/api/vms?offset=${p * LIST_PAGE}&limit=${LIST_PAGE}`),
    );
  } finally {
    await api.close();
  }
});

Deno.test("cli: agent status reads 10,000 hosts a page at a time and merges them", async () => {
  const n = LIST_PAGE * 2;
  const hosts = Array.from({ length: n }, (_, i) => ({
    ...STATUS.hosts[0],
    name: `s${i}`,
    port: `host:s${i}`,
  }));
  const ports = Object.fromEntries(hosts.map((h) => [h.port, Object.values(STATUS.ports)[0]]));
  const api = await fakeApi({ status: { ...STATUS, hosts, ports } });
  try {
    const { code, shown } = await json(api, "status");
    assertEquals(code, 0);
    assertEquals(shown.hosts.map((h: { name: string }) => h.name), hosts.map((h) => h.name));
    assertEquals(Object.keys(shown.ports).length, n, "every host's port");
    assertEquals(api.asked.length, 3, "two full pages and an empty one");
  } finally {
    await api.close();
  }
});

Deno.test("cli: agent status of a host (no host list) is its one reply", async () => {
  const { hosts: _, ports: __, ...rest } = STATUS;
  const api = await fakeApi({ status: { ...rest, role: "host" } as unknown as typeof STATUS });
  try {
    const { code, shown } = await json(api, "status");
    assertEquals(code, 0);
    assertEquals(shown.role, "host");
    assertEquals(api.asked.length, 1);
  } finally {
    await api.close();
  }
});
