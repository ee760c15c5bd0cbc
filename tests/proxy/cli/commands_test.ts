/**
 * The CLI's subcommands against a fake API (fake_api.ts): for every command, the words it
 * prints, the exit code and the requests it sends, compared with testdata/commands_golden.json
 * (recorded from the CLI before it became a table of commands, so a change of output shows).
 */
import { assertEquals } from "../../support/assert.ts";
import { runCommand } from "../../../proxy/cli/commands.ts";
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
