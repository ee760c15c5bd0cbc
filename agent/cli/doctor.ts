/**
 * `agent doctor [same flags as the daemon]`: checks what the agent needs on this machine,
 * with the configuration it would run with, and says what to do about each problem. It
 * changes nothing and starts nothing.
 *
 *     /dev/net/tun, CAP_NET_ADMIN (and CAP_NET_RAW, libpcap for --pcap), the bridge and its
 *     MTU, a DHCP server already on that bridge (libvirt's virbr0), the state directory and
 *     its secret files, the token file; for a host: the proxy reachable and its CA the one
 *     the token pins, the clock within the CA's validity, a fixed --listen port
 *
 * Exit status: 0 when nothing failed (warnings allowed), 1 otherwise.
 *
 * @module
 */

import type { Config } from "../config/schema.ts";
import { formatAddress } from "../config/types.ts";
import { CAP_NET_ADMIN, CAP_NET_RAW, hasCapability } from "../../ffi/capabilities.ts";
import { tunUnavailable } from "../../ffi/tap.ts";
import { readKernelText } from "../../ffi/kernel_file.ts";
import { CaMismatch, discoverCa } from "../join/discovery.ts";
import { parseJoinToken } from "../join/token.ts";
import { certificateInfo } from "../join/x509.ts";

/** One check's outcome. */
export interface Finding {
  status: "ok" | "warn" | "fail";
  what: string;
  /** What to do, when it is not ok. */
  fix?: string;
}

const SECRET_FILES = ["join.token", "ca.key", "proxy.key", "api.token", "hosts.json", "host.json"];

/** Runs every check that applies to `config`; the findings in order. */
export async function diagnose(config: Config): Promise<Finding[]> {
  const out: Finding[] = [];
  const attachesTap = !config.pcap && (!config.proxy || config.tap !== null);
  if (attachesTap) out.push(tun());
  if (attachesTap || config.bridge) out.push(capability(CAP_NET_ADMIN, "CAP_NET_ADMIN", "a TAP"));
  if (config.pcap) {
    out.push(capability(CAP_NET_RAW, "CAP_NET_RAW", "capturing"));
    out.push(await libpcap());
  }
  if (config.bridge) out.push(...bridge(config.bridge, config.mtu));
  if (config.proxy && !config.tap && !config.pcap) {
    out.push({
      status: "warn",
      what: "the proxy bridges the overlay to no LAN (no --tap or --pcap)",
      fix: "give --tap NAME --bridge BR (or --pcap IFACE) if the VMs should reach a LAN",
    });
  }
  out.push(...await stateDir(config.stateDir));
  if (!config.proxy) out.push(...await hostChecks(config));
  return out;
}

function tun(): Finding {
  const why = tunUnavailable();
  if (why === null) return { status: "ok", what: "/dev/net/tun" };
  return { status: "fail", what: why, fix: "modprobe tun (in a container: give it /dev/net/tun)" };
}

function capability(cap: number, name: string, forWhat: string): Finding {
  const has = hasCapability(cap);
  if (has) return { status: "ok", what: `${name} (for ${forWhat})` };
  return {
    status: has === null ? "warn" : "fail",
    what: has === null
      ? `cannot tell whether this process has ${name}`
      : `no ${name} (needed for ${forWhat})`,
    fix: `run as root, or grant it: systemd AmbientCapabilities=${name}; setpriv --ambient-caps +${
      name.slice(4).toLowerCase()
    }`,
  };
}

async function libpcap(): Promise<Finding> {
  try {
    const { checkLibpcap } = await import("../../ffi/pcap.ts");
    checkLibpcap();
    return { status: "ok", what: "libpcap" };
  } catch (e) {
    return {
      status: "fail",
      what: `libpcap cannot be loaded: ${(e as Error).message.split("\n")[0]}`,
      fix: "apt-get install libpcap0.8 (or set VNET_LIBPCAP to its path)",
    };
  }
}

function bridge(name: string, mtu: number): Finding[] {
  const sys = `/sys/class/net/${name}`;
  let have: number;
  try {
    readKernelText(`${sys}/bridge/bridge_id`);
    have = Number(readKernelText(`${sys}/mtu`));
  } catch {
    return [{
      status: "fail",
      what: `bridge ${name} does not exist (or is not a bridge)`,
      fix: `ip link add ${name} type bridge && ip link set ${name} up, or --bridge another one`,
    }];
  }
  const out: Finding[] = [];
  out.push(
    have === mtu ? { status: "ok", what: `bridge ${name}, MTU ${mtu}` } : {
      status: "fail",
      what: `bridge ${name} has MTU ${have}, the agent --mtu ${mtu}`,
      fix: `ip link set ${name} mtu ${mtu}, or --mtu ${have} (every VM must agree)`,
    },
  );
  if (/^virbr\d+$/.test(name)) {
    out.push({
      status: "warn",
      what: `${name} is libvirt's NAT network: its dnsmasq serves DHCP and DNS on it`,
      fix: "bridging several hosts' virbr0 puts several DHCP servers on one segment; give the " +
        "VMs an isolated libvirt network without <ip> (see the README, Real VMs)",
    });
  }
  return out;
}

async function stateDir(dir: string): Promise<Finding[]> {
  let info;
  try {
    info = await Deno.stat(dir);
  } catch {
    return [{
      status: "warn",
      what: `state directory ${dir} does not exist yet`,
      fix: "the agent creates it (0700) on first start; make sure this user may",
    }];
  }
  const out: Finding[] = [];
  const mode = (info.mode ?? 0) & 0o777;
  out.push(
    mode & 0o077
      ? {
        status: "fail",
        what: `state directory ${dir} is open to others (mode 0${mode.toString(8)})`,
        fix: `chmod 700 ${dir}`,
      }
      : { status: "ok", what: `state directory ${dir}` },
  );
  for (const f of SECRET_FILES) {
    const m = await Deno.stat(`${dir}/${f}`).then((s) => (s.mode ?? 0) & 0o777, () => null);
    if (m !== null && m & 0o077) {
      out.push({
        status: "fail",
        what: `${dir}/${f} is readable by others (mode 0${m.toString(8)})`,
        fix: `chmod 600 ${dir}/${f}; if someone may have read it, replace the secret`,
      });
    }
  }
  return out;
}

async function hostChecks(config: Config): Promise<Finding[]> {
  const out: Finding[] = [];
  if (!config.listen) {
    out.push({
      status: "warn",
      what: "fast paths are accepted on a port chosen at start",
      fix: "behind a firewall, fix it with --listen :PORT and let that port in",
    });
  }
  let text = config.token;
  if (!text && config.tokenFile) {
    try {
      const s = await Deno.stat(config.tokenFile);
      if ((s.mode ?? 0) & 0o077) {
        out.push({
          status: "fail",
          what: `token file ${config.tokenFile} is readable by others`,
          fix: `chmod 600 ${config.tokenFile}`,
        });
      }
      text = await Deno.readTextFile(config.tokenFile);
    } catch {
      out.push({
        status: "fail",
        what: `token file ${config.tokenFile} cannot be read`,
        fix: "copy the proxy's state-dir/join.token there (0600)",
      });
      return out;
    }
  }
  if (!text || !config.join) return out;
  let token;
  try {
    token = parseJoinToken(text.trim());
  } catch (e) {
    out.push({ status: "fail", what: (e as Error).message });
    return out;
  }
  const proxy = formatAddress(config.join);
  try {
    const caPem = await discoverCa(config.join, token.caHash, { timeoutMs: 3000 });
    out.push({
      status: "ok",
      what: `proxy ${proxy} answers, and its CA is the one the token pins`,
    });
    out.push(await clock(caPem));
  } catch (e) {
    out.push(
      e instanceof CaMismatch
        ? {
          status: "fail",
          what: `proxy ${proxy}'s CA is not the one the token pins`,
          fix: "get the current join.token from that proxy (or someone is in the middle)",
        }
        : {
          status: "fail",
          what: `proxy ${proxy} cannot be reached: ${(e as Error).message.split("\n")[0]}`,
          fix: "check the address, the proxy's --listen and the firewalls between",
        },
    );
  }
  return out;
}

async function clock(caPem: string): Promise<Finding> {
  const ca = await certificateInfo(caPem);
  return Date.now() > ca.notAfter
    ? {
      status: "fail",
      what: `this machine's clock is past the proxy CA's validity (${
        new Date(ca.notAfter).toISOString()
      })`,
      fix: "fix the clock (timedatectl, NTP), or renew the proxy's CA",
    }
    : { status: "ok", what: "the clock is within the proxy CA's validity" };
}

/** Prints the findings; the exit status. */
export function report(findings: Finding[], out: (line: string) => void): number {
  for (const f of findings) {
    out(`${f.status.padEnd(4)}  ${f.what}${f.fix ? `\n      -> ${f.fix}` : ""}`);
  }
  const failed = findings.filter((f) => f.status === "fail").length;
  out(failed ? `\n${failed} problem(s) to fix.` : "\nNothing to fix.");
  return failed ? 1 : 0;
}
