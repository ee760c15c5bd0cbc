import { assert, assertEquals, assertRejects } from "../../support/assert.ts";
import { ConfigError, loadInvocation } from "../../../agent/config/load.ts";

const files = (map: Record<string, string>) => ({
  readTextFile: (p: string) =>
    map[p] !== undefined ? Promise.resolve(map[p]) : Promise.reject(new Deno.errors.NotFound(p)),
});

Deno.test("config: YAML keys are the flag names, and flags win over the file", async () => {
  const yaml = 'proxy: true\nlisten: ":7900"\nmtu: 9000\nmove-quiet: 2s\nlog-format: json\n';
  const inv = await loadInvocation(
    ["--config", "v.yaml", "--mtu", "1400"],
    files({ "v.yaml": yaml }),
  );
  assertEquals(inv.config.proxy, true);
  assertEquals(inv.config.listen, { hostname: "0.0.0.0", port: 7900 });
  assertEquals(inv.config.mtu, 1400);
  assertEquals(inv.config.moveQuiet, 2000);
  assertEquals(inv.config.logFormat, "json");
  assertEquals(inv.config.keepalive, 1000, "unset keys take their documented default");
});

Deno.test("config: an unknown key names the file and suggests the right one", async () => {
  const e = await assertRejects(
    () => loadInvocation(["--config", "v.yaml"], files({ "v.yaml": "proxy: true\nmttu: 9000\n" })),
    ConfigError,
    'config file v.yaml: unknown key "mttu" (did you mean "mtu"?)',
  );
  assert(e.message.includes("agent --help"));
});

Deno.test("config: a wrong type names the file, the key and what is expected", async () => {
  await assertRejects(
    () => loadInvocation(["--config", "v.yaml"], files({ "v.yaml": "proxy: true\nmtu: big\n" })),
    ConfigError,
    'config file v.yaml: key "mtu": expected an integer from 576 to 65000, got "big"',
  );
  await assertRejects(
    () => loadInvocation(["--proxy", "--keepalive", "soon"]),
    ConfigError,
    "flag --keepalive: expected a duration",
  );
});

Deno.test("config: bad addresses are refused before anything starts", async () => {
  for (const bad of ["proxy", "10.0.0.1", "10.0.0.1:99999", "[::1]", "a b:80"]) {
    await assertRejects(
      () => loadInvocation(["--join", bad, "--token", "x"]),
      ConfigError,
      "flag --join",
    );
  }
  const v6 = await loadInvocation(["--join", "[2001:db8::1]:7800", "--token-file", "t"]);
  assertEquals(v6.config.join, { hostname: "2001:db8::1", port: 7800 });
});

Deno.test("config: impossible combinations say what to do", async () => {
  const cases: [string[], string][] = [
    [[], "nothing to run"],
    [["--proxy", "--join", "a:1"], "exclude each other"],
    [["--proxy", "--tap", "t0", "--pcap", "eth0"], "--tap and --pcap"],
    [["--join", "a:1"], "--token-file"],
    [["--proxy", "--tap", "this-name-is-too-long"], "at most 15"],
  ];
  for (const [argv, msg] of cases) {
    await assertRejects(() => loadInvocation(argv), ConfigError, msg);
  }
});

Deno.test("config: YAML syntax errors, non-mappings and missing files are clear", async () => {
  await assertRejects(
    () => loadInvocation(["--config", "v.yaml"], files({ "v.yaml": "proxy: [\n" })),
    ConfigError,
    "config file v.yaml: not valid YAML",
  );
  await assertRejects(
    () => loadInvocation(["--config", "v.yaml"], files({ "v.yaml": "- a\n- b\n" })),
    ConfigError,
    "expected a mapping",
  );
  await assertRejects(
    () => loadInvocation(["--config", "nope.yaml"], files({})),
    ConfigError,
    "no such file",
  );
  await assertRejects(
    () => loadInvocation(["--frobnicate"]),
    ConfigError,
    "command line: unknown flag --frobnicate",
  );
});

Deno.test("config: a fuzzed YAML file never crashes the parser, only ConfigError", async () => {
  let seed = 3;
  const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
  const alphabet = "proxy: mtu-lsten[]{}:,\"'&*!|>-\n 0123456789.abcxyz#";
  for (let i = 0; i < 2000; i++) {
    const text = Array.from({ length: rnd(60) }, () => alphabet[rnd(alphabet.length)]).join("");
    try {
      await loadInvocation(["--config", "f.yaml"], files({ "f.yaml": text }));
    } catch (e) {
      if (!(e instanceof ConfigError)) throw new Error(`${JSON.stringify(text)} -> ${e}`);
    }
  }
});

Deno.test("config: on/off flags take --x, --no-x and --x=false; a bad value is refused", async () => {
  assertEquals((await loadInvocation(["--proxy", "--no-adapt"])).config.adapt, false);
  assertEquals((await loadInvocation(["--proxy", "--adapt=false"])).config.adapt, false);
  assertEquals((await loadInvocation(["--proxy", "--offload=true"])).config.offload, true);
  assertEquals((await loadInvocation(["--proxy"])).config.adapt, true);
  await assertRejects(
    () => loadInvocation(["--proxy", "--adapt=maybe"]),
    ConfigError,
    "flag --adapt",
  );
});
