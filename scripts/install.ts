/**
 * `deno task install`: installs the agent as software people run as a service.
 *
 *     /opt/vnet/                 the program (agent/, proxy/, adapt/, inference/, ffi/,
 *                                main.ts, deno.json, deno.lock) and deno-dir/, its cached
 *                                npm dependencies: nothing is fetched when it runs
 *     /usr/local/bin/vnet-agent  runs it with exactly its permissions (agent/run_flags.ts)
 *     /etc/vnet/*.yaml.example   commented example configs for a proxy and a host
 *     /etc/systemd/system/       vnet-proxy.service, vnet-host@.service (one per config name)
 *     user vnet                  the services run as it, with only CAP_NET_ADMIN and
 *                                CAP_NET_RAW (ambient), in a sandbox (see the units)
 *
 *     usage: deno task install [--root DIR] [--no-user] [--uninstall]
 *
 * `--root DIR` installs under DIR (for packaging and tests); `--no-user` skips creating the
 * `vnet` user; `--uninstall` removes the program, the command and the units, and keeps
 * /etc/vnet and /var/lib/vnet (the configs, keys and host book are the operator's).
 *
 * @module
 */

import { AGENT_RUN_FLAGS } from "../agent/run_flags.ts";

const SOURCE = new URL("..", import.meta.url).pathname;

/** What the installed program consists of (tests, benchmarks and the lab stay behind). */
const PROGRAM = [
  "agent",
  "proxy",
  "adapt",
  "inference",
  "ffi",
  "main.ts",
  "deno.json",
  "deno.lock",
];

/** Where everything goes under `root`. */
export function layout(root: string) {
  const r = root.replace(/\/+$/, "");
  return {
    app: `${r}/opt/vnet`,
    denoDir: `${r}/opt/vnet/deno-dir`,
    command: `${r}/usr/local/bin/vnet-agent`,
    etc: `${r}/etc/vnet`,
    units: `${r}/etc/systemd/system`,
  };
}

/** The `vnet-agent` command: the installed program with exactly the agent's permissions. */
export function commandScript(app: string, denoDir: string, deno: string): string {
  return `#!/bin/sh
# vnet-agent: installed by vnet's scripts/install.ts. Runs the agent from ${app} with exactly
# the permissions it needs and its dependencies from ${denoDir} (nothing is fetched).
export DENO_DIR=${denoDir}
export DENO_NO_UPDATE_CHECK=1
exec ${deno} run --cached-only --no-prompt --config ${app}/deno.json \\
  ${AGENT_RUN_FLAGS.join(" ")} ${app}/main.ts "$@"
`;
}

/** The hardening shared by both units. */
const SANDBOX = `User=vnet
Group=vnet
# Only what a TAP, bridge enslaving and libpcap need; nothing else of root's.
AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW
CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictSUIDSGID=yes
RestrictRealtime=yes
LockPersonality=yes
SystemCallArchitectures=native
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK AF_PACKET
DevicePolicy=closed
DeviceAllow=/dev/net/tun rw
Restart=on-failure
RestartSec=2`;

/** systemd units: the proxy, and a template for hosts (`vnet-host@NAME` reads NAME.yaml). */
export function units(command: string): Record<string, string> {
  return {
    "vnet-proxy.service": `[Unit]
Description=vnet proxy: hub of the adaptive virtual network
Documentation=file:/opt/vnet/README.md
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart=${command} --config /etc/vnet/proxy.yaml --state-dir /var/lib/vnet/proxy
# Re-reads the config: logging and adaptation settings change live, the rest is named.
ExecReload=/bin/kill -HUP $MAINPID
StateDirectory=vnet/proxy
StateDirectoryMode=0700
${SANDBOX}

[Install]
WantedBy=multi-user.target
`,
    "vnet-host@.service": `[Unit]
Description=vnet host %i: joins this machine's VMs to the virtual network
Documentation=file:/opt/vnet/README.md
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart=${command} --config /etc/vnet/%i.yaml --state-dir /var/lib/vnet/%i
ExecReload=/bin/kill -HUP $MAINPID
StateDirectory=vnet/%i
StateDirectoryMode=0700
${SANDBOX}

[Install]
WantedBy=multi-user.target
`,
  };
}

/** Commented example configurations. */
export const EXAMPLES: Record<string, string> = {
  "proxy.yaml.example":
    `# vnet proxy (copy to /etc/vnet/proxy.yaml; systemctl enable --now vnet-proxy)
# Keys are the flags of \`vnet-agent --help\`, without the dashes.
proxy: true
# Where hosts join. Open this TCP port in the firewall.
listen: :7800
# Bridge the overlay to the LAN: a TAP the agent creates on an existing bridge...
tap: vnet0
bridge: br0
# ...or capture an existing interface instead (then no tap/bridge):
# pcap: eth1
# The control API stays on loopback; the CLI reads its token from the state dir.
api: 127.0.0.1:7801
# The join token admits new hosts for this long (0: for ever).
token-ttl: 7d
log-format: json
`,
  "host.yaml.example":
    `# vnet host (copy to /etc/vnet/NAME.yaml; systemctl enable --now vnet-host@NAME)
join: proxy.example.net:7800
# A copy of the proxy's join.token, mode 0600, readable by the vnet user.
token-file: /etc/vnet/join.token
name: rack1-node7
# The bridge the VMs' NICs are on (libvirt: an isolated network's bridge; Proxmox: vmbr1).
tap: vnet0
bridge: br-vnet
# A fixed port for fast paths from other hosts, if a firewall must let them in:
# listen: :7810
log-format: json
`,
};

async function install(root: string, createUser: boolean): Promise<void> {
  const l = layout(root);
  await Deno.mkdir(l.app, { recursive: true, mode: 0o755 });
  for (const item of PROGRAM) {
    await copy(`${SOURCE}${item}`, `${l.app}/${item}`);
  }
  await Deno.copyFile(`${SOURCE}README.md`, `${l.app}/README.md`);
  // Dependencies into the program's own cache, so the service user needs no home.
  const cache = await new Deno.Command(Deno.execPath(), {
    args: ["cache", "--frozen", "--config", `${l.app}/deno.json`, `${l.app}/main.ts`],
    env: { DENO_DIR: l.denoDir },
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!cache.success) throw new Error(`Cannot cache the agent's dependencies into ${l.denoDir}`);
  await openUp(l.app);
  await Deno.mkdir(l.command.slice(0, l.command.lastIndexOf("/")), { recursive: true });
  await Deno.writeTextFile(l.command, commandScript(l.app, l.denoDir, Deno.execPath()), {
    mode: 0o755,
  });
  await Deno.chmod(l.command, 0o755);
  await Deno.mkdir(l.etc, { recursive: true, mode: 0o755 });
  for (const [name, text] of Object.entries(EXAMPLES)) {
    await Deno.writeTextFile(`${l.etc}/${name}`, text, { mode: 0o644 });
  }
  await Deno.mkdir(l.units, { recursive: true });
  for (const [name, text] of Object.entries(units("/usr/local/bin/vnet-agent"))) {
    await Deno.writeTextFile(`${l.units}/${name}`, text, { mode: 0o644 });
  }
  if (createUser) await ensureUser();
  console.log(
    `installed vnet-agent in ${l.app}, the command ${l.command}, units in ${l.units} and ` +
      `example configs in ${l.etc}.\nNext: copy ${l.etc}/proxy.yaml.example to proxy.yaml ` +
      "(or a host's), then: systemctl daemon-reload && systemctl enable --now vnet-proxy",
  );
}

async function uninstall(root: string): Promise<void> {
  const l = layout(root);
  for (const path of [l.app, l.command, ...Object.keys(units("")).map((u) => `${l.units}/${u}`)]) {
    await Deno.remove(path, { recursive: true }).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    });
  }
  console.log(
    `removed ${l.app}, ${l.command} and the units; kept ${l.etc} and /var/lib/vnet ` +
      "(configs, keys, the host book): remove them yourself if you mean to",
  );
}

/** Copies a file or a directory tree. */
async function copy(from: string, to: string): Promise<void> {
  const info = await Deno.stat(from);
  if (info.isFile) return await Deno.copyFile(from, to);
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) await copy(`${from}/${e.name}`, `${to}/${e.name}`);
}

/** The program is root's and readable by everyone (the service user runs it, cannot change it). */
async function openUp(path: string): Promise<void> {
  const info = await Deno.lstat(path);
  if (info.isSymlink) return;
  await Deno.chmod(path, info.isDirectory ? 0o755 : ((info.mode ?? 0) & 0o111 ? 0o755 : 0o644));
  if (info.isDirectory) {
    for await (const e of Deno.readDir(path)) await openUp(`${path}/${e.name}`);
  }
}

async function ensureUser(): Promise<void> {
  const known = await new Deno.Command("id", { args: ["vnet"], stdout: "null", stderr: "null" })
    .output();
  if (known.success) return;
  const made = await new Deno.Command("useradd", {
    args: [
      "--system",
      "--no-create-home",
      "--home-dir",
      "/var/lib/vnet",
      "--shell",
      "/usr/sbin/nologin",
      "vnet",
    ],
  }).output();
  if (!made.success) throw new Error("Cannot create the vnet user (useradd failed); run as root");
}

if (import.meta.main) {
  const args = Deno.args;
  const at = args.indexOf("--root");
  const root = at >= 0 ? args[at + 1] : "/";
  if (at >= 0 && !root) {
    console.error("install: --root needs a directory");
    Deno.exit(2);
  }
  try {
    if (args.includes("--uninstall")) await uninstall(root);
    else await install(root, !args.includes("--no-user") && root === "/");
  } catch (e) {
    console.error(`install: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
