/** The agent's command line, run as a user would run it. */
import { assert, assertEquals } from "./support/assert.ts";
import { keyOf, type SettingName, SETTINGS } from "../agent/config/schema.ts";
import denoJson from "../deno.json" with { type: "json" };

const ROOT = new URL("..", import.meta.url).pathname;
const BINARY = `${ROOT}dist/agent`;

async function agent(args: string[], binary?: string) {
  const cmd = binary
    ? new Deno.Command(binary, { args, stdout: "piped", stderr: "piped" })
    : new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", `${ROOT}main.ts`, ...args],
      stdout: "piped",
      stderr: "piped",
    });
  const out = await cmd.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function assertHelpComplete(help: string) {
  for (const name of Object.keys(SETTINGS) as SettingName[]) {
    assert(help.includes(`--${keyOf(name)}`), `--help does not explain --${keyOf(name)}`);
  }
  for (const extra of ["--config", "--help", "--version"]) assert(help.includes(extra), extra);
}

Deno.test("agent --help explains every option", async () => {
  const r = await agent(["--help"]);
  assertEquals(r.code, 0, r.stderr);
  assertHelpComplete(r.stdout);
});

Deno.test("agent --version prints the version from deno.json", async () => {
  const r = await agent(["--version"]);
  assertEquals(r.code, 0);
  assert(r.stdout.startsWith(`agent ${denoJson.version}`), r.stdout);
});

Deno.test("agent refuses bad input with exit 2 and one clear line, before starting anything", async () => {
  const r = await agent(["--proxy", "--mtu", "12"]);
  assertEquals(r.code, 2);
  assertEquals(
    r.stderr.trim(),
    'agent: flag --mtu: expected an integer from 576 to 65000, got "12"',
  );
  const none = await agent([]);
  assertEquals(none.code, 2);
  assert(none.stderr.includes("--proxy") && none.stderr.includes("--join"), none.stderr);
});

const hasBinary = await Deno.stat(BINARY).then((s) => s.isFile, () => false);
Deno.test({
  name: hasBinary
    ? "compiled dist/agent --help explains every option"
    : "compiled dist/agent --help (skipped: no dist/agent; `deno task compile` needs denort, see README)",
  ignore: !hasBinary,
  async fn() {
    const r = await agent(["--help"], BINARY);
    assertEquals(r.code, 0, r.stderr);
    assertHelpComplete(r.stdout);
  },
});
