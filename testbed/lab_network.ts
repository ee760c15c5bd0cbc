/**
 * The lab's network, built from its options: the underlay bridge, the proxy and its LAN, and
 * per host a namespace with its VMs' namespaces behind veths (on a bridge for TAP attachment,
 * bare for pcap). Only `ip` commands, in the order the kernel needs them; the running lab
 * (lab.ts) owns the result and deletes it.
 *
 * @module
 */

import { sh } from "./lab_shell.ts";

/** A VM: a namespace with one interface on its host's network. */
export interface Vm {
  ns: string;
  /** Overlay IP. */
  ip: string;
  mac: string;
  host: number;
}

/** How a host attaches to its VMs. */
export type AttachMode = "tap" | "pcap";

/** Lab shape. */
export interface LabOptions {
  hosts: number;
  vmsPerHost?: number;
  /** Give the proxy a LAN namespace behind a TAP on a bridge. */
  lan?: boolean;
  /**
   * pcap: every agent captures an existing veth (a host its VM's, one VM per host; the proxy
   * the LAN's) instead of creating a TAP.
   */
  attach?: AttachMode;
  /** MTU of the VMs' networks (VM interfaces, host-side veths, agents' TAPs); default 1500. */
  mtu?: number;
  /** Extra agent flags for every host / the proxy. */
  hostArgs?: readonly string[];
  /** Every host serves its status API on 127.0.0.1:7802 in its namespace (`Lab.hostStatus`). */
  hostApi?: boolean;
  proxyArgs?: readonly string[];
}

/** What building the network reads from and records into: a `Lab` is one. */
export interface LabLayout {
  readonly prefix: string;
  readonly opts: Required<LabOptions>;
  readonly vms: Vm[];
  readonly namespaces: string[];
  readonly lanIp: string;
  readonly underlayNs: string;
  readonly proxyNs: string;
  readonly lanNs: string;
  hostNs(i: number): string;
  hostIp(i: number): string;
}

async function addNs(lab: LabLayout, name: string): Promise<void> {
  await sh(["ip", "netns", "add", name]);
  lab.namespaces.push(name);
  await sh(["ip", "-n", name, "link", "set", "lo", "up"]);
}

/**
 * Builds the lab's namespaces, bridges and veths as {@linkcode LabLayout.opts} says, recording
 * every namespace in `lab.namespaces` as soon as it exists (so a failed build can be undone)
 * and every VM in `lab.vms`.
 */
export async function buildLabNetwork(lab: LabLayout): Promise<void> {
  const ul = lab.underlayNs;
  await addNs(lab, ul);
  await sh(["ip", "-n", ul, "link", "add", "br0", "type", "bridge"]);
  await sh(["ip", "-n", ul, "link", "set", "br0", "up"]);
  // Proxy on the underlay.
  await addNs(lab, lab.proxyNs);
  await uplink(lab, lab.proxyNs, "px", "10.77.0.1");
  if (lab.opts.lan) {
    await addNs(lab, lab.lanNs);
    await veth(lab, lab.lanNs, "eth0", lab.proxyNs, "lan0", "02:88:00:00:00:fa");
    if (lab.opts.attach === "tap") {
      await sh(["ip", "-n", lab.proxyNs, "link", "add", "br-lan", "type", "bridge"]);
      await sh(["ip", "-n", lab.proxyNs, "link", "set", "br-lan", "up"]);
      await sh(["ip", "-n", lab.proxyNs, "link", "set", "lan0", "master", "br-lan"]);
    }
    await sh(["ip", "-n", lab.lanNs, "addr", "add", `${lab.lanIp}/24`, "dev", "eth0"]);
  }
  for (let h = 1; h <= lab.opts.hosts; h++) {
    const hns = lab.hostNs(h);
    await addNs(lab, hns);
    await uplink(lab, hns, `h${h}`, lab.hostIp(h));
    if (lab.opts.attach === "tap") {
      await sh(["ip", "-n", hns, "link", "add", "br-vm", "type", "bridge"]);
      await sh(["ip", "-n", hns, "link", "set", "br-vm", "up"]);
    }
    for (let v = 1; v <= lab.opts.vmsPerHost; v++) {
      const vns = `${lab.prefix}-h${h}v${v}`;
      await addNs(lab, vns);
      const mac = `02:88:00:00:${h.toString(16).padStart(2, "0")}:${
        v.toString(16).padStart(2, "0")
      }`;
      const ip = `10.88.0.${h * 10 + v}`;
      await veth(lab, vns, "eth0", hns, `v${v}`, mac);
      if (lab.opts.mtu !== 1500) {
        await sh(["ip", "-n", vns, "link", "set", "eth0", "mtu", String(lab.opts.mtu)]);
        await sh(["ip", "-n", hns, "link", "set", `v${v}`, "mtu", String(lab.opts.mtu)]);
      }
      if (lab.opts.attach === "tap") {
        await sh(["ip", "-n", hns, "link", "set", `v${v}`, "master", "br-vm"]);
        // A bridge keeps the MTU it was created with; set it to the VMs' own.
        await sh(["ip", "-n", hns, "link", "set", "br-vm", "mtu", String(lab.opts.mtu)]);
      }
      await sh(["ip", "-n", vns, "addr", "add", `${ip}/24`, "dev", "eth0"]);
      lab.vms.push({ ns: vns, ip, mac, host: h });
    }
  }
}

/** A veth from namespace `ns` (named `eth0`) to the underlay bridge, with `ip`/24. */
async function uplink(lab: LabLayout, ns: string, tag: string, ip: string): Promise<void> {
  await veth(lab, ns, "eth0", lab.underlayNs, `ul-${tag}`);
  await sh(["ip", "-n", lab.underlayNs, "link", "set", `ul-${tag}`, "master", "br0"]);
  await sh(["ip", "-n", ns, "addr", "add", `${ip}/24`, "dev", "eth0"]);
}

/** A veth pair between two namespaces, both ends up. */
async function veth(
  lab: LabLayout,
  nsA: string,
  nameA: string,
  nsB: string,
  nameB: string,
  macA?: string,
): Promise<void> {
  const tmp = `${lab.prefix}t${Math.random().toString(36).slice(2, 6)}`;
  await sh(["ip", "link", "add", tmp, "type", "veth", "peer", "name", `${tmp}p`]);
  await sh(["ip", "link", "set", tmp, "netns", nsA]);
  await sh(["ip", "link", "set", `${tmp}p`, "netns", nsB]);
  await sh(["ip", "-n", nsA, "link", "set", tmp, "name", nameA]);
  await sh(["ip", "-n", nsB, "link", "set", `${tmp}p`, "name", nameB]);
  if (macA) await sh(["ip", "-n", nsA, "link", "set", nameA, "address", macA]);
  await sh(["ip", "-n", nsA, "link", "set", nameA, "up"]);
  await sh(["ip", "-n", nsB, "link", "set", nameB, "up"]);
}
