/**
 * Root-only: the installed software, run the way a service runs it. `deno task install` puts
 * the program, its command, example configs and systemd units under a scratch root; the units
 * pass `systemd-analyze verify`; host agents started from the installed command as an
 * unprivileged user with only CAP_NET_ADMIN and CAP_NET_RAW (as the units grant them), one
 * from a config file with a TAP on its bridge, one capturing its VM's interface with libpcap,
 * carry the VMs' pings; without the capability the agent stops with a message naming it and
 * the unit setting that grants it; uninstall keeps the configs.
 */
import { labTest } from "../support/lab_test.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { layout, units } from "../../scripts/install.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const NOBODY = 65534;

async function run(cmd: string[], cwd = ROOT) {
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function hasCommand(name: string): boolean {
  return ["/usr/bin", "/bin", "/usr/sbin", "/sbin"].some((d) => {
    try {
      return Deno.statSync(`${d}/${name}`).isFile;
    } catch {
      return false;
    }
  });
}

/** The installed command, as user nobody, with `caps` ambient (e.g. "+net_admin,+net_raw"). */
function asService(command: string, caps: string | null, args: string[]): string[] {
  return [
    "setpriv",
    `--reuid=${NOBODY}`,
    `--regid=${NOBODY}`,
    "--clear-groups",
    ...(caps ? [`--inh-caps=${caps}`, `--ambient-caps=${caps}`] : ["--inh-caps=-all"]),
    command,
    ...args,
  ];
}

labTest("lab install: units verify; the installed agent runs unprivileged with two capabilities", {
  hosts: 2,
  vmsPerHost: 1,
}, async (lab) => {
  const root = `${lab.dir}/root`;
  const inst = await run([Deno.execPath(), "task", "--quiet", "install", "--root", root]);
  assertEquals(inst.code, 0, inst.stderr + inst.stdout);
  const l = layout(root);
  for (const f of [l.command, `${l.app}/main.ts`, `${l.etc}/proxy.yaml.example`]) {
    assert(await Deno.stat(f).then(() => true, () => false), `${f} installed`);
  }

  // The units, with ExecStart pointing at this scratch install, as systemd reads them.
  if (hasCommand("systemd-analyze")) {
    const dir = `${lab.dir}/units`;
    await Deno.mkdir(dir);
    for (const [name, text] of Object.entries(units(l.command))) {
      await Deno.writeTextFile(`${dir}/${name.replace("@.", "@h1.")}`, text);
    }
    for (const name of ["vnet-proxy.service", "vnet-host@h1.service"]) {
      const v = await run(["systemd-analyze", "verify", `${dir}/${name}`]);
      assertEquals([v.code, (v.stdout + v.stderr).trim()], [0, ""], `${name} verifies cleanly`);
    }
  } else {
    console.log("systemd-analyze is not installed: the units' verification is skipped");
  }

  // The service user's own files: its state dir and a private copy of the token.
  await lab.startProxy();
  const mine = async (path: string, dir: boolean) => {
    if (dir) await Deno.mkdir(path, { mode: 0o700 });
    await Deno.chown(path, NOBODY, NOBODY);
  };
  await mine(`${lab.dir}/svc`, true);
  await Deno.copyFile(`${lab.stateDir}/join.token`, `${lab.dir}/svc/join.token`);
  await Deno.chmod(`${lab.dir}/svc/join.token`, 0o600);
  await mine(`${lab.dir}/svc/join.token`, false);
  await Deno.chmod(lab.dir, 0o755); // the scratch install inside it is read by nobody

  // Host 1 as its unit runs it: from a config file, as the service user, two capabilities.
  const config = `${lab.dir}/svc/h1.yaml`;
  await Deno.writeTextFile(
    config,
    [
      `join: ${lab.proxyAddr}`,
      `token-file: ${lab.dir}/svc/join.token`,
      "name: h1",
      "tap: vnet0",
      "bridge: br-vm",
      "",
    ].join("\n"),
  );
  await mine(config, false);
  const host = await lab.spawn(
    "h1-service",
    lab.hostNs(1),
    asService(l.command, "+net_admin,+net_raw", [
      "--config",
      config,
      "--state-dir",
      `${lab.dir}/svc/state`,
    ]),
  );
  await lab.waitForLog(host, /Joined proxy/, 30_000);
  const who = await lab.exec(lab.hostNs(1), ["ps", "-o", "user=", "-p", String(host.child.pid)]);
  console.log(`the host agent runs as: ${who.stdout.trim()}`);
  const master = await lab.exec(lab.hostNs(1), ["ip", "-o", "link", "show", "vnet0"]);
  assert(master.stdout.includes("master br-vm"), `the TAP is on the bridge: ${master.stdout}`);
  assertEquals((await lab.ping(lab.vms[0].ns, lab.lanIp, { count: 3 })).received, 3);

  // Host 2 captures its VM's existing interface (pcap mode), unprivileged too.
  const pcapHost = await lab.spawn(
    "h2-service",
    lab.hostNs(2),
    asService(l.command, "+net_admin,+net_raw", [
      "--join",
      lab.proxyAddr,
      "--token-file",
      `${lab.dir}/svc/join.token`,
      "--state-dir",
      `${lab.dir}/svc/state-pcap`,
      "--name",
      "h2",
      "--pcap",
      "v1",
    ]),
  );
  await lab.waitForLog(pcapHost, /Joined proxy/, 30_000);
  assertEquals((await lab.ping(lab.vms[1].ns, lab.vms[0].ip, { count: 3 })).received, 3);
  await lab.stop(pcapHost);

  // Without the capability: a clear stop, naming it and the unit setting.
  const denied = await lab.exec(
    lab.hostNs(2),
    asService(l.command, null, [
      "--join",
      lab.proxyAddr,
      "--token-file",
      `${lab.dir}/svc/join.token`,
      "--state-dir",
      `${lab.dir}/svc/state2`,
      "--name",
      "h2",
      "--tap",
      "vnet0",
    ]),
  );
  assertEquals(denied.code, 1, denied.stdout + denied.stderr);
  assert(
    denied.stderr.includes("lacks CAP_NET_ADMIN") &&
      denied.stderr.includes("AmbientCapabilities=CAP_NET_ADMIN"),
    denied.stderr,
  );

  await lab.stop(host);
  const un = await run([
    Deno.execPath(),
    "task",
    "--quiet",
    "install",
    "--root",
    root,
    "--uninstall",
  ]);
  assertEquals(un.code, 0, un.stderr);
  assert(!(await Deno.stat(l.app).then(() => true, () => false)), "the program is gone");
  assert(
    await Deno.stat(`${l.etc}/proxy.yaml.example`).then(() => true, () => false),
    "configs kept",
  );
});
