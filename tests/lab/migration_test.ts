/**
 * Root-only: live migration on the lab. VM 1 talks to VM 3 over a fast path; its NIC moves from
 * host 1's bridge to host 2's (same MAC and IP) and it announces itself. Pings from VM 3 reach
 * it again (how soon is bench:migration's figure); host 1 then claiming VM 1's MAC is refused
 * while VM 1 keeps working.
 */
import { labTest } from "../support/lab_test.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { FAST_VTTIF } from "../../testbed/lab.ts";
import { measureMove } from "../../testbed/migrate.ts";
import { Phase } from "../../testbed/phases.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const FAST = FAST_VTTIF;

labTest("lab migration: a moved VM keeps its network; a claim on it is refused", {
  hosts: 3,
  lan: false,
  proxyArgs: FAST,
  hostArgs: FAST,
}, async (lab) => {
  await lab.startAll();
  const [vm1, , vm3] = lab.vms;
  const cli = (...args: string[]) => lab.agentJson(...args);
  // VM 1 and VM 3 talk both ways: a fast path h1-h3 carries it.
  await Phase.start(lab, "pair", (i) => (i === 0 ? [2] : i === 2 ? [0] : []), { kbps: 4000 });
  const until = Date.now() + 20_000;
  let linked = false;
  while (!linked && Date.now() < until) {
    const links = await cli("links");
    linked = links.fastPaths.some((f: { hosts: string[]; phase: string }) =>
      f.hosts.join() === "h1,h3" && f.phase === "up"
    );
    if (!linked) await new Promise((r) => setTimeout(r, 200));
  }
  assert(linked, "a fast path h1-h3 carries VM 1's traffic before the move");
  assert(await lab.waitPing(vm3.ns, vm1.ip, 5000), "VM 3 reaches VM 1 before the move");

  // measureMove fails unless VM 3 hears from VM 1 again and the proxy reports forwarding
  // updated on every host for this very move; how fast is bench:migration's figure.
  const m = await measureMove(lab, { vm: 0, toHost: 2, observer: 2 });
  console.log(
    `recovery ${m.recoveryMs.toFixed(0)} ms, forwarding updated everywhere in ${m.forwardingMs} ms`,
  );
  assertEquals(m.lostAfterRecovery, 0, "no pings lost once traffic flows again");
  const vms = await cli("vms");
  assert(
    vms.find((v: { mac: string }) => v.mac === vm1.mac)?.host === "h2",
    JSON.stringify(vms),
  );

  // Host 1 claims VM 1's MAC (a frame written into its TAP): refused, VM 1 unharmed.
  const before = (await cli("status")).drops.spoofed;
  await lab.exec(lab.hostNs(1), [
    Deno.execPath(),
    "run",
    "--allow-ffi",
    "--allow-env",
    `${ROOT}testbed/inject_frame.ts`,
    "vnet0",
    "ff:ff:ff:ff:ff:ff",
    vm1.mac,
    "0",
    "3",
  ], false);
  const after = (await cli("status")).drops.spoofed;
  assert(after > before, `the claim was refused (spoofed ${before} -> ${after})`);
  const ping = await lab.ping(vm3.ns, vm1.ip, { count: 5, intervalS: 0.1 });
  assert(ping.received === 5, ping.output);
  const proxy = lab.processes.find((p) => p.name === "proxy")!;
  await lab.waitForLog(proxy, /VM .* moved from host:h1 to host:h2/, 1000);
  await lab.waitForLog(proxy, /Refused .* from host:h1/, 1000);
});
