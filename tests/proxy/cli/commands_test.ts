/**
 * The CLI's subcommands against a fake API (fake_api.ts): for every command, the words it
 * prints, the exit code and the requests it sends, compared with testdata/commands_golden.json
 * (recorded from the CLI before it became a table of commands, so a change of output shows).
 */
import { assertEquals } from "../../support/assert.ts";
import { LIST_PAGE, runCommand } from "../../../proxy/cli/commands.ts";
import { VMS } from "./api_replies.ts";
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

Deno.test("cli: agent vms reads a long list a page at a time, and shows all of it", async () => {
  const n = LIST_PAGE * 2 + 3;
  const vms = Array.from({ length: n }, (_, i) => ({
    ...VMS[0],
    mac: `02:00:00:${(i >> 16).toString(16).padStart(2, "0")}:${
      ((i >> 8) & 255).toString(16).padStart(2, "0")
    }:${(i & 255).toString(16).padStart(2, "0")}`,
  }));
  const api = await fakeApi(vms);
  try {
    const out: string[] = [];
    const code = await runCommand(
      api.invocation(["vms"], { json: true }),
      (s) => out.push(s),
      () => {},
    );
    assertEquals(code, 0);
    assertEquals(
      JSON.parse(out.join("\n")).map((v: { mac: string }) => v.mac),
      vms.map((v) => v.mac),
    );
    assertEquals(
      api.asked.map((a) => a.path),
      [0, 1, 2].map((p) => `/api/vms?offset=${p * LIST_PAGE}&limit=${LIST_PAGE}`),
    );
  } finally {
    await api.close();
  }
});
