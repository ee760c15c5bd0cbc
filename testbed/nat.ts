/**
 * Hostile edges for the lab (testbed/lab.ts): a host behind a NAT router, behind a firewall
 * that drops inbound connections, or the whole underlay on IPv6 only. Built on a lab that
 * exists, by moving a host's underlay link:
 *
 *     before:  host ns i ──eth0 10.77.0.1i── underlay br0
 *     NAT:     host ns i ──eth0 10.66.i.2──lan0 router ns (nftables masquerade) wan0
 *                10.77.0.(100+i) ── underlay br0
 *     firewall: host ns i keeps its address; nftables in it drops new inbound on eth0
 *     IPv6:    every underlay address becomes fd77::N/64 (the IPv4 ones are removed)
 *
 * Routers are plain Linux: `ip_forward`, a postrouting `masquerade` (Linux keeps the source
 * port where it can: a port-preserving NAT) or `masquerade random` (a new port per
 * connection: what "symmetric" NATs do), and a filter that, like home routers, drops what
 * nobody asked for (no RST, so an early SYN of a hole punch is lost, not refused). Router
 * namespaces join the lab's list, so `Lab.close()` deletes them too.
 *
 * @module
 */

import type { Lab } from "./lab.ts";
import { sh } from "./lab_shell.ts";

/** What stands between a host and the underlay. */
export type Edge = "open" | "nat" | "nat-random" | "firewall";

/** The underlay address of the proxy on an IPv6-only lab. */
export const PROXY_V6 = "fd77::1";

/** The proxy's join address on an IPv6-only lab. */
export const PROXY_V6_ADDR = `[${PROXY_V6}]:7800`;

/** Host i's underlay address on an IPv6-only lab. */
export function hostV6(i: number): string {
  return `fd77::${10 + i}`;
}

/** The address host i's traffic appears from behind its edge (its router's, behind a NAT). */
export function outsideIp(lab: Lab, i: number, edge: Edge): string {
  return edge === "nat" || edge === "nat-random" ? `10.77.0.${100 + i}` : lab.hostIp(i);
}

/** The router namespace in front of host i. */
export function routerNs(lab: Lab, i: number): string {
  return `${lab.prefix}-r${i}`;
}

/** Puts host `i` behind `edge` (call before its agent starts). */
export async function placeBehind(lab: Lab, i: number, edge: Edge): Promise<void> {
  if (edge === "open") return;
  if (edge === "firewall") {
    await nft(lab.hostNs(i), [
      "table inet vnetlab {",
      "  chain input {",
      "    type filter hook input priority 0; policy accept;",
      '    iifname "eth0" ct state established,related accept',
      '    iifname "eth0" drop',
      "  }",
      "}",
    ]);
    return;
  }
  const r = routerNs(lab, i);
  const ul = lab.underlayNs;
  const hns = lab.hostNs(i);
  await sh(["ip", "netns", "add", r]);
  lab.namespaces.push(r);
  await sh(["ip", "-n", r, "link", "set", "lo", "up"]);
  // The host's underlay veth now ends in the router (its LAN side).
  await sh(["ip", "-n", ul, "link", "set", `ul-h${i}`, "nomaster"]);
  await sh(["ip", "-n", ul, "link", "set", `ul-h${i}`, "netns", r]);
  await sh(["ip", "-n", r, "link", "set", `ul-h${i}`, "name", "lan0"]);
  await sh(["ip", "-n", r, "addr", "add", `10.66.${i}.1/24`, "dev", "lan0"]);
  await sh(["ip", "-n", r, "link", "set", "lan0", "up"]);
  // The router's WAN side on the underlay bridge.
  const tmp = `${lab.prefix}n${i}`;
  await sh(["ip", "link", "add", tmp, "type", "veth", "peer", "name", `${tmp}p`]);
  await sh(["ip", "link", "set", tmp, "netns", r]);
  await sh(["ip", "link", "set", `${tmp}p`, "netns", ul]);
  await sh(["ip", "-n", r, "link", "set", tmp, "name", "wan0"]);
  await sh(["ip", "-n", ul, "link", "set", `${tmp}p`, "name", `ul-r${i}`]);
  await sh(["ip", "-n", ul, "link", "set", `ul-r${i}`, "master", "br0"]);
  await sh(["ip", "-n", ul, "link", "set", `ul-r${i}`, "up"]);
  await sh(["ip", "-n", r, "addr", "add", `${outsideIp(lab, i, edge)}/24`, "dev", "wan0"]);
  await sh(["ip", "-n", r, "link", "set", "wan0", "up"]);
  await lab.exec(r, ["sysctl", "-qw", "net.ipv4.ip_forward=1"], false);
  // The host gets a private address behind it.
  await sh(["ip", "-n", hns, "addr", "flush", "dev", "eth0"]);
  await sh(["ip", "-n", hns, "addr", "add", `10.66.${i}.2/24`, "dev", "eth0"]);
  await sh(["ip", "-n", hns, "route", "add", "default", "via", `10.66.${i}.1`]);
  await nft(r, [
    "table ip vnetlab_nat {",
    "  chain post {",
    "    type nat hook postrouting priority srcnat; policy accept;",
    `    oifname "wan0" masquerade${edge === "nat-random" ? " random" : ""}`,
    "  }",
    "}",
    "table inet vnetlab_filter {",
    "  chain input {",
    "    type filter hook input priority 0; policy drop;",
    "    ct state established,related accept",
    '    iifname { "lo", "lan0" } accept',
    "  }",
    "  chain forward {",
    "    type filter hook forward priority 0; policy drop;",
    "    ct state established,related accept",
    '    iifname "lan0" oifname "wan0" accept',
    "    ct status dnat accept", // port forwards (portForward)
    "  }",
    "}",
  ]);
}

/**
 * Gives the lab's underlay IPv6: the proxy at {@linkcode PROXY_V6}, host i at
 * {@linkcode hostV6}; every IPv4 underlay address removed unless `keepIPv4` (dual stack). Call
 * before agents start, on a lab whose hosts are all "open". Start the proxy with `--listen [::]:7800` and hosts with
 * `--join` {@linkcode PROXY_V6_ADDR}.
 */
export async function ipv6Underlay(lab: Lab, options: { keepIPv4?: boolean } = {}): Promise<void> {
  const ends: [string, string][] = [[lab.proxyNs, PROXY_V6]];
  for (let i = 1; i <= lab.opts.hosts; i++) ends.push([lab.hostNs(i), hostV6(i)]);
  for (const [ns, ip] of ends) {
    await lab.exec(ns, ["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=0"], false);
    if (!options.keepIPv4) await sh(["ip", "-n", ns, "-4", "addr", "flush", "dev", "eth0"]);
    await sh(["ip", "-n", ns, "addr", "add", `${ip}/64`, "dev", "eth0", "nodad"]);
  }
}

/** Loads an nftables ruleset (lines) into namespace `ns`. */
async function nft(ns: string, lines: string[]): Promise<void> {
  const file = await Deno.makeTempFile({ prefix: "vnetlab-nft-" });
  try {
    await Deno.writeTextFile(file, lines.join("\n") + "\n");
    await sh(["ip", "netns", "exec", ns, "nft", "-f", file]);
  } finally {
    await Deno.remove(file).catch(() => {});
  }
}

/**
 * A port forward on host i's NAT router: TCP to its outside address at `outsidePort` goes to
 * the host's `insidePort` (what `--advertise` is for).
 */
export async function portForward(
  lab: Lab,
  i: number,
  outsidePort: number,
  insidePort: number,
): Promise<void> {
  await nft(routerNs(lab, i), [
    "table ip vnetlab_fwd {",
    "  chain pre {",
    "    type nat hook prerouting priority dstnat; policy accept;",
    `    iifname "wan0" tcp dport ${outsidePort} dnat to 10.66.${i}.2:${insidePort}`,
    "  }",
    "}",
  ]);
}

/** Why NAT labs cannot run here (no nft), or null. */
export function natUnavailable(): string | null {
  try {
    return new Deno.Command("nft", { args: ["--version"], stdout: "null", stderr: "null" })
        .outputSync().success
      ? null
      : "needs nftables (nft)";
  } catch {
    return "needs nftables (nft)";
  }
}
