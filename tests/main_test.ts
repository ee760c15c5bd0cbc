/** The agent's command line, run as a user would run it. */
import { assert, assertEquals } from "./support/assert.ts";
import { keyOf, type SettingName, SETTINGS } from "../agent/config/schema.ts";
import denoJson from "../deno.json" with { type: "json" };
import { AGENT_RUN_FLAGS } from "../agent/run_flags.ts";
import { agentTask as agent, spawnAgentTask as spawnAgent } from "./support/agent_task.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const BINARY = `${ROOT}dist/agent`;

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

Deno.test("deno task agent runs with exactly the flags the agent declares", () => {
  const task = denoJson.tasks.agent;
  assertEquals(task, `deno run ${AGENT_RUN_FLAGS.join(" ")} main.ts`);
});

Deno.test("agent --proxy logs JSON lines with --log-format json and stops cleanly on SIGTERM", async () => {
  const stateDir = await Deno.makeTempDir({ prefix: "vnet-main-" });
  try {
    const proxy = spawnAgent([
      "--proxy",
      "--listen",
      "127.0.0.1:0",
      "--api",
      "127.0.0.1:0",
      "--state-dir",
      stateDir,
      "--log-format",
      "json",
    ]);
    const err = await proxy.until("Control API");
    const status = await proxy.stop();
    assertEquals(status.code, 0, err);
    const lines = err.trim().split("\n");
    const records = lines.map((l) => JSON.parse(l));
    assert(records.some((r) => /Proxy listening/.test(r.message)), err);
    assert(records.every((r) => typeof r["@timestamp"] === "string" && r.level), err);
    const token = await Deno.readTextFile(`${stateDir}/join.token`);
    assert(!err.includes(token.split(".")[2]), "the token's secret never reaches the log");
    // Without a terminal the new token is not printed at all, only where it is.
    assert(
      records.some((r) =>
        r.message.startsWith("Created a join token") &&
        r.properties.path === `${stateDir}/join.token`
      ),
      err,
    );
    assertEquals(await proxy.stdout, "", "nothing on stdout, the token least of all");
    assert(
      records.some((r) => r.message.startsWith("Not bridging the overlay to any LAN")),
      "a proxy without --tap says it bridges nothing",
    );
    assertEquals((await Deno.stat(`${stateDir}/join.token`)).mode! & 0o777, 0o600);
    assertEquals((await Deno.stat(`${stateDir}/ca.key`)).mode! & 0o777, 0o600);
  } finally {
    await Deno.remove(stateDir, { recursive: true });
  }
});

Deno.test("deno task agent --config FILE starts a proxy from a YAML file, without a terminal", async () => {
  // The YAML parser reads LOG_TOKENS and LOG_STREAM from the environment; under the task's
  // permissions that once failed every config file ("Requires env access").
  const dir = await Deno.makeTempDir({ prefix: "vnet-config-" });
  try {
    const file = `${dir}/vnet.yaml`;
    await Deno.writeTextFile(
      file,
      [
        "# a proxy for the test",
        "proxy: true",
        "listen: 127.0.0.1:0",
        "api: 127.0.0.1:0",
        `state-dir: ${dir}/state`,
        "update-interval: 2s",
        "",
      ].join("\n"),
    );
    const proxy = spawnAgent(["--config", file]);
    const err = await proxy.until("Control API");
    const status = await proxy.stop();
    assert(err.includes("Proxy listening on 127.0.0.1:"), err);
    assertEquals(status.code, 0, err);
    // A bad key in the same file is refused before anything starts, naming file and key.
    await Deno.writeTextFile(file, "proxy: true\nlisten-on: 127.0.0.1:0\n");
    const bad = await agent(["--config", file]);
    assertEquals(bad.code, 2, bad.stderr);
    assert(bad.stderr.includes(file) && bad.stderr.includes("listen-on"), bad.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task agent status without a proxy says what to do, exit 1", async () => {
  const r = await agent(["status", "--api", "127.0.0.1:9"]);
  assertEquals(r.code, 1, r.stderr);
  assert(r.stderr.includes("Is `agent --proxy` running on this machine?"), r.stderr);
});

Deno.test("deno task compile fails with a clear message when denort is missing", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-run",
      "--allow-read",
      "--allow-env=DENORT_BIN",
      `${ROOT}scripts/compile.ts`,
    ],
    env: { DENORT_BIN: "/nonexistent/denort" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(out.code, 1);
  assert(
    new TextDecoder().decode(out.stderr).includes(
      "DENORT_BIN=/nonexistent/denort does not name a file",
    ),
  );
});

Deno.test("deno task agent: bad input says what is expected, with the right flag", async () => {
  const neg = await agent(["--proxy", "--fast-paths", "-1"]);
  assertEquals(neg.code, 2);
  assert(neg.stderr.includes("flag --fast-paths: expected auto or an integer"), neg.stderr);
  const typo = await agent(["status", "--jsn"]);
  assertEquals(typo.code, 2);
  assert(typo.stderr.includes("unknown flag --jsn (did you mean --json?)"), typo.stderr);
  const help = await agent(["--help"]);
  assert(/--mac-age DURATION .*\(default 5m\)/.test(help.stdout), "durations as people write them");
  assert(
    /--fast-paths N\|auto .*\(default auto\)/.test(help.stdout),
    "--fast-paths has its default",
  );
  assert(
    help.stdout.includes("the proxy attaches nothing without --tap or --pcap"),
    "--tap per mode",
  );
});

Deno.test("deno task agent: a port in use names the flag; a token file must exist and be private", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vnet-msg-" });
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (taken.addr as Deno.NetAddr).port;
  try {
    const common = ["--proxy", "--state-dir", `${dir}/state`];
    const listen = await agent([
      ...common,
      "--listen",
      `127.0.0.1:${port}`,
      "--api",
      "127.0.0.1:0",
    ]);
    assertEquals(listen.code, 1, listen.stderr);
    assert(
      listen.stderr.includes(
        `Cannot listen on 127.0.0.1:${port} (--listen): the address is already in use`,
      ),
      listen.stderr,
    );
    const api = await agent([...common, "--listen", "127.0.0.1:0", "--api", `127.0.0.1:${port}`]);
    assertEquals(api.code, 1, api.stderr);
    assert(api.stderr.includes(`(--api): the address is already in use`), api.stderr);

    const host = ["--join", "127.0.0.1:9", "--state-dir", `${dir}/host`, "--tap", "vnettest"];
    const missing = await agent([...host, "--token-file", `${dir}/nope`]);
    assertEquals(missing.code, 1, missing.stderr);
    assert(
      missing.stderr.includes("(--token-file): no such file. Copy the proxy's"),
      missing.stderr,
    );
    await Deno.writeTextFile(`${dir}/open.token`, "vnet1.x.y.z\n", { mode: 0o644 });
    await Deno.chmod(`${dir}/open.token`, 0o644);
    const open = await agent([...host, "--token-file", `${dir}/open.token`]);
    assertEquals(open.code, 1, open.stderr);
    assert(open.stderr.includes(`chmod 600 ${dir}/open.token`), open.stderr);
  } finally {
    taken.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task agent: SIGHUP applies the adaptation settings of the file and names the rest", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vnet-hup-" });
  try {
    const file = `${dir}/vnet.yaml`;
    const base = [
      "proxy: true",
      "listen: 127.0.0.1:0",
      "api: 127.0.0.1:0",
      `state-dir: ${dir}/state`,
    ];
    await Deno.writeTextFile(file, [...base, "log-format: json", ""].join("\n"));
    const proxy = spawnAgent(["--config", file]);
    let stopped = false;
    try {
      const started = await proxy.until("Control API");
      const port = /"addr":"127\.0\.0\.1:(\d+)","path"/.exec(started)?.[1];
      assert(port, started);
      await Deno.writeTextFile(
        file,
        [...base, "log-format: json", "fast-paths: 2", 'pin: ["a:b"]', "mac-age: 10m", ""].join(
          "\n",
        ),
      );
      // To the agent itself, as systemd's ExecReload does to its main process (`deno task`
      // passes SIGTERM and SIGINT on to the agent, not SIGHUP).
      const task = proxy.child.pid;
      const agentPid = Number(
        Deno.readTextFileSync(`/proc/${task}/task/${task}/children`).trim().split(/\s+/)[0],
      );
      Deno.kill(agentPid, "SIGHUP");
      const after = await proxy.until("Reloaded the configuration");
      const line = JSON.parse(after.trim().split("\n").at(-1)!);
      assertEquals(line.properties, { applied: "--fast-paths, --pin", restart: "--mac-age" });
      const token = (await Deno.readTextFile(`${dir}/state/api.token`)).trim();
      const adapt = await (await fetch(`http://127.0.0.1:${port}/api/adapt`, {
        headers: { authorization: `Bearer ${token}` },
      })).json();
      assertEquals([adapt.settings.budget, adapt.settings.pins], [2, ["a|b"]]);
      stopped = true;
      assertEquals((await proxy.stop()).code, 0);
    } finally {
      if (!stopped) await proxy.stop().catch(() => {}); // a failed check leaves no agent behind
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task agent: an API off loopback speaks only TLS, and the CLI trusts it by ca.crt", async () => {
  const stateDir = await Deno.makeTempDir({ prefix: "vnet-main-" });
  const free = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (free.addr as Deno.NetAddr).port;
  free.close();
  const proxy = spawnAgent([
    "--proxy",
    "--listen",
    "127.0.0.1:0",
    "--api",
    `0.0.0.0:${port}`,
    "--state-dir",
    stateDir,
  ]);
  try {
    const err = await proxy.until("Control API on");
    assert(err.includes(`Control API on https://0.0.0.0:${port}`), err);
    // Plain HTTP gets no answer; HTTPS without trusting the proxy's CA fails too.
    const plain = await fetch(`http://127.0.0.1:${port}/api/status`).then(
      (r) => r.body?.cancel().then(() => r.status),
      (e: Error) => e.name,
    );
    assert(typeof plain !== "number" || plain >= 400, `plain HTTP answered ${plain}`);
    const untrusted = await fetch(`https://127.0.0.1:${port}/api/status`).then(
      () => "answered",
      () => "refused",
    );
    assertEquals(untrusted, "refused", "the certificate comes from the proxy's own CA");
    // The CLI, as users run it, finds the token and the CA in the state dir.
    const status = await agent(["status", "--api", `0.0.0.0:${port}`, "--state-dir", stateDir]);
    assertEquals(status.code, 0, status.stderr);
    assert(status.stdout.startsWith("proxy "), status.stdout);
    const page = await agent(["page", "--api", `0.0.0.0:${port}`, "--state-dir", stateDir]);
    assertEquals(page.code, 0, page.stderr);
    assert(page.stdout.includes(`https://127.0.0.1:${port}/login?code=`), page.stdout);
  } finally {
    await proxy.stop();
    await Deno.remove(stateDir, { recursive: true });
  }
});
