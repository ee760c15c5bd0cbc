/**
 * Other ways to join two hosts' VM bridges, measured beside vnet in the same lab run: kernel
 * VXLAN (the fast, unencrypted reference) and tinc 1.0 in switch mode (Debian's package; the
 * comparable user-space L2 VPN), over UDP or TCP only, with its default cipher or none, the
 * cipher named from tinc's own log.
 *
 * Each starts between hosts 1 and 2 of a lab whose agents are not running, and is removed by
 * the function it returns.
 *
 * @module
 */

import type { Lab, LabProcess } from "./lab.ts";
import { loadOrCreatePki } from "../proxy/pki/ca.ts";
import { PROXY_TLS_NAME } from "../agent/join/join.ts";

async function ipIn(lab: Lab, ns: string, args: string[]): Promise<void> {
  const r = await lab.exec(ns, ["ip", ...args]);
  if (r.code !== 0) throw new Error(`Cannot run ip ${args.join(" ")} in ${ns}: ${r.stderr.trim()}`);
}

/** Kernel VXLAN between hosts 1 and 2, enslaved to their VM bridges. */
export async function startVxlan(lab: Lab): Promise<() => Promise<void>> {
  for (const [h, peer] of [[1, 2], [2, 1]]) {
    const ns = lab.hostNs(h);
    await ipIn(lab, ns, [
      "link",
      "add",
      "vx0",
      "type",
      "vxlan",
      "id",
      "42",
      "remote",
      lab.hostIp(peer),
      "dstport",
      "4789",
      "dev",
      "eth0",
    ]);
    await ipIn(lab, ns, ["link", "set", "vx0", "master", "br-vm", "up"]);
  }
  return async () => {
    for (const h of [1, 2]) await lab.exec(lab.hostNs(h), ["ip", "link", "del", "vx0"]);
  };
}

/** True when Debian's tinc (1.0, `tincd`) is installed. */
export async function hasTinc(): Promise<boolean> {
  try {
    return (await new Deno.Command("tincd", { args: ["--version"], stdout: "null", stderr: "null" })
      .output()).success;
  } catch {
    return false;
  }
}

/** How tinc runs. */
export interface TincOptions {
  /** Carry every packet over the TCP meta connection (its cipher) instead of UDP. */
  tcpOnly: boolean;
  /**
   * `none`: `Cipher = none` and `Digest = none`, the upper bound of what tinc can do on this
   * machine (it applies to UDP packets; tinc 1.0 always encrypts its meta connection).
   */
  cipher?: "default" | "none";
  /** Log at level 4, which prints each request's contents (costly with TCPOnly: every packet). */
  verbose?: boolean;
}

/**
 * tinc 1.0 in switch mode between hosts 1 and 2 (keys generated for the run), its TAP on each
 * VM bridge. Returns the daemons (for CPU and memory) and the stop function.
 */
export async function startTinc(
  lab: Lab,
  options: TincOptions,
): Promise<{ daemons: LabProcess[]; stop: () => Promise<void> }> {
  const dirs: string[] = [];
  for (const h of [1, 2]) {
    const dir = `${lab.dir}/tinc-h${h}`;
    dirs.push(dir);
    await Deno.mkdir(`${dir}/hosts`, { recursive: true });
    await Deno.writeTextFile(
      `${dir}/tinc.conf`,
      [
        `Name = h${h}`,
        "Mode = switch",
        "DeviceType = tap",
        `Interface = tinc${h}`,
        h === 1 ? "ConnectTo = h2" : "",
        "",
      ]
        .join("\n"),
    );
    await Deno.writeTextFile(
      `${dir}/hosts/h${h}`,
      [
        `Address = ${lab.hostIp(h)}`,
        "Port = 655",
        options.tcpOnly ? "TCPOnly = yes" : "",
        // Per host: the cipher and digest of packets sent to this host.
        options.cipher === "none" ? "Cipher = none\nDigest = none" : "",
        "",
      ].join("\n"),
    );
    await Deno.writeTextFile(
      `${dir}/tinc-up`,
      `#!/bin/sh\nip link set "$INTERFACE" master br-vm\nip link set "$INTERFACE" up\n`,
      { mode: 0o755 },
    );
    const keygen = await new Deno.Command("tincd", {
      args: ["-c", dir, "-K", "2048"],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).output();
    if (!keygen.success) throw new Error(`Cannot generate tinc keys in ${dir}`);
  }
  // Each side knows the other's host file (address and public key).
  for (const [a, b] of [[1, 2], [2, 1]]) {
    await Deno.copyFile(`${dirs[b - 1]}/hosts/h${b}`, `${dirs[a - 1]}/hosts/h${b}`);
  }
  const daemons: LabProcess[] = [];
  for (const h of [1, 2]) {
    daemons.push(
      await lab.spawn(`tinc-h${h}-${options.tcpOnly ? "tcp" : "udp"}`, lab.hostNs(h), [
        "tincd",
        "-c",
        dirs[h - 1],
        "-D",
        ...(options.verbose ? ["-d4"] : []),
        "--pidfile",
        `${dirs[h - 1]}/pid`,
      ]),
    );
  }
  return {
    daemons,
    stop: async () => {
      for (const d of daemons) await lab.stop(d, 2000);
      for (const dir of dirs) await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** OpenSSL NIDs tinc 1.0 puts in its METAKEY and ANS_KEY requests. */
const NIDS: Record<number, string> = {
  0: "none",
  64: "sha1",
  91: "bf-cbc",
  419: "aes-128-cbc",
  427: "aes-256-cbc",
  428: "aes-256-ofb",
  429: "aes-256-cfb",
  672: "sha256",
  673: "sha384",
  674: "sha512",
};

/**
 * What tinc itself says protects its packets, from its level-4 log: METAKEY names the meta
 * connection's cipher (what TCPOnly packets travel in), ANS_KEY the UDP packets' cipher and
 * digest. Throws when the log has no such request.
 */
export function tincCipherFromLog(log: string, tcpOnly: boolean): string {
  const name = (nid: string) => NIDS[Number(nid)] ?? `NID ${nid}`;
  // "Got METAKEY from h2 (...): 1 CIPHER DIGEST MACLENGTH COMPRESSION KEY"
  // "Got ANS_KEY from h2 (...): 16 FROM TO KEY CIPHER DIGEST MACLENGTH COMPRESSION"
  const m = tcpOnly
    ? /Got METAKEY from .*?: 1 (\d+) (\d+) /.exec(log)
    : /Got ANS_KEY from .*?: 16 \S+ \S+ \S+ (\d+) (\d+) /.exec(log);
  if (!m) {
    throw new Error(
      `Cannot name tinc's cipher: no ${tcpOnly ? "METAKEY" : "ANS_KEY"} request in its log`,
    );
  }
  if (tcpOnly) return `meta connection ${name(m[1])}`;
  return m[1] === "0" && m[2] === "0"
    ? "no encryption, no MAC"
    : `${name(m[1])}, ${name(m[2])} MAC`;
}

/**
 * Starts tinc with `options` verbosely until a ping crosses it, reads from its log what
 * protects its packets, and stops it: the name of the row measured next with the same options.
 */
export async function probeTincCipher(lab: Lab, options: TincOptions): Promise<string> {
  const tinc = await startTinc(lab, { ...options, verbose: true });
  try {
    if (!await lab.waitPing(lab.vms[0].ns, lab.vms[1].ip, 15_000)) {
      throw new Error("Cannot name tinc's cipher: no ping crossed it");
    }
    const log = await Deno.readTextFile(tinc.daemons[0].logPath);
    return tincCipherFromLog(log, options.tcpOnly);
  } finally {
    await tinc.stop();
  }
}

/**
 * The TypeScript floor ({@link ./floor_relay.ts}) between hosts 1 and 2: a minimal synchronous
 * relay, its TAP on each VM bridge, with superframes when `offload` and TLS 1.3 by OpenSSL when
 * `tls` (certificates from the proxy's own PKI code, the client checking the server's name
 * against the CA, as agents do). Returns the relays (for CPU and memory) and the stop function.
 */
export async function startFloorRelay(
  lab: Lab,
  options: { offload: boolean; tls: boolean },
): Promise<{ daemons: LabProcess[]; stop: () => Promise<void> }> {
  const script = new URL("./floor_relay.ts", import.meta.url).pathname;
  const tlsArgs: Record<"server" | "client", string[]> = { server: [], client: [] };
  if (options.tls) {
    const dir = `${lab.dir}/floor-pki`;
    const pki = await loadOrCreatePki(dir);
    await Deno.writeTextFile(`${dir}/ca.pem`, pki.caPem);
    await Deno.writeTextFile(`${dir}/server.pem`, pki.proxyCertPem);
    await Deno.writeTextFile(`${dir}/server.key`, pki.proxyKeyPem, { mode: 0o600 });
    tlsArgs.server = ["--tls-cert", `${dir}/server.pem`, "--tls-key", `${dir}/server.key`];
    tlsArgs.client = ["--tls-ca", `${dir}/ca.pem`, "--tls-name", PROXY_TLS_NAME];
  }
  const relay = (h: number, role: string[]) =>
    lab.spawn(`floor-h${h}`, lab.hostNs(h), [
      Deno.execPath(),
      "run",
      "--allow-net",
      "--allow-ffi",
      "--allow-read",
      script,
      ...role,
      "--tap",
      "floor0",
      "--bridge",
      "br-vm",
      ...(options.offload ? [] : ["--no-offload"]),
    ]);
  const endpoint = `${lab.hostIp(1)}:7009`;
  const daemons = [await relay(1, ["--listen", endpoint, ...tlsArgs.server])];
  const stop = async () => {
    for (const d of daemons) await lab.stop(d, 2000);
  };
  try {
    daemons.push(await relay(2, ["--connect", endpoint, ...tlsArgs.client]));
    for (const d of daemons) await lab.waitForLog(d, /floor relay up/, 20_000);
  } catch (e) {
    await stop();
    throw e;
  }
  return { daemons, stop };
}
