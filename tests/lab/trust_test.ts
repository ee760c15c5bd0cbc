/**
 * Root-only: host identities through the real CLI. `agent hosts` lists every admitted host
 * with its key and certificate; a host restarted with its state dir keeps its name (its key
 * is in host.json); a machine that copies the name but not the key is refused and leaves the
 * host in place alone; `agent hosts revoke` cuts a host off for good while the others keep
 * talking.
 */
import { labTest } from "../support/lab_test.ts";
import { assert, assertEquals } from "../support/assert.ts";

labTest("lab trust: agent hosts, a restart keeps the name, a clone is refused, revoke", {
  hosts: 3,
  lan: false,
}, async (lab) => {
  await lab.startAll();
  const [vm1, vm2, vm3] = lab.vms;
  const listed = await lab.agentJson("hosts");
  assertEquals(listed.hosts.map((h: { name: string }) => h.name), ["h1", "h2", "h3"]);
  assert(
    listed.hosts.every((h: { online: boolean; key: string }) => h.online && /^SHA256:/.test(h.key)),
  );
  const keyOf = (name: string) => listed.hosts.find((h: { name: string }) => h.name === name).key;

  // h2 restarts with its state dir: same key, same name, welcome back.
  await lab.restartHost(2);
  const again = await lab.agentJson("hosts");
  assertEquals(again.hosts.find((h: { name: string }) => h.name === "h2").key, keyOf("h2"));

  // A clone of h3 (same --name, no copy of its state dir) on h1's machine is refused.
  const clone = await lab.spawn(
    "clone-h3",
    lab.hostNs(1),
    lab.agentCommand([
      "--join",
      lab.proxyAddr,
      "--token-file",
      `${lab.stateDir}/join.token`,
      "--name",
      "h3",
      "--state-dir",
      `${lab.dir}/clone-state`,
      "--tap",
      "vnetclone",
    ]),
  );
  await lab.waitForLog(clone, /host name h3 is taken by another key/, 15_000);
  await lab.stop(clone);
  assertEquals((await lab.ping(vm1.ns, vm3.ip, { count: 3 })).received, 3, "h3 undisturbed");

  // Revoked: h3's agent gives up with the reason; h1 and h2 keep talking.
  const r = await lab.exec(lab.proxyNs, lab.proxyCli(["hosts", "revoke", "h3"]));
  assertEquals(r.code, 0, r.stderr);
  assert(r.stdout.includes(`revoked h3`) && r.stdout.includes(keyOf("h3")), r.stdout);
  const h3 = lab.processes.find((p) => p.name === "h3")!;
  await lab.waitForLog(h3, /was revoked/, 15_000);
  const after = await lab.agentJson("hosts");
  assertEquals(after.revoked.map((k: { key: string }) => k.key), [keyOf("h3")]);
  assertEquals((await lab.ping(vm1.ns, vm2.ip, { count: 3 })).received, 3);
  const table = await lab.exec(lab.proxyNs, lab.proxyCli(["hosts"]));
  assert(table.stdout.includes("revoked keys:") && table.stdout.includes("h1"), table.stdout);
});
