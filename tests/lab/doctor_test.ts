/**
 * Root-only: `agent doctor` through the real CLI in a host's namespace, on the lab's own
 * bridge and proxy: what is right is said to be, each wrong thing is named with its fix, and
 * the exit status says whether anything must be fixed.
 */
import { labTest } from "../support/lab_test.ts";
import { assert, assertEquals } from "../support/assert.ts";

/** Fails unless every line of `expected` is in `output`. */
function expectAll(output: string, expected: string[]): void {
  for (const text of expected) assert(output.includes(text), `"${text}" in:\n${output}`);
}

labTest("lab doctor: checks a host's machine and its proxy, and names every fix", {
  hosts: 1,
  lan: false,
}, async (lab) => {
  await lab.startProxy();
  const token = `${lab.stateDir}/join.token`;
  const doctor = (...args: string[]) =>
    lab.exec(
      lab.hostNs(1),
      lab.agentCommand([
        "doctor",
        "--join",
        lab.proxyAddr,
        "--state-dir",
        `${lab.dir}/h1-doctor`,
        "--tap",
        "vnet0",
        ...args,
      ]),
    );
  const good = await doctor("--token-file", token, "--bridge", "br-vm", "--listen", ":7810");
  assertEquals(good.code, 0, good.stdout + good.stderr);
  expectAll(good.stdout, [
    "ok    /dev/net/tun",
    "ok    CAP_NET_ADMIN (for a TAP)",
    "ok    bridge br-vm, MTU 1500",
    `ok    proxy ${lab.proxyAddr} answers, and its CA is the one the token pins`,
    "ok    the clock is within the proxy CA's validity",
    "Nothing to fix.",
  ]);

  // A wrong MTU, a token for another proxy, an open token file, no fixed port.
  const other = `${lab.dir}/other.token`;
  const [v, id, secret] = (await Deno.readTextFile(token)).trim().split(".");
  await Deno.writeTextFile(other, `${v}.${id}.${secret}.${"A".repeat(43)}\n`, { mode: 0o644 });
  await Deno.chmod(other, 0o644);
  const bad = await doctor("--token-file", other, "--bridge", "br-vm", "--mtu", "9000");
  assertEquals(bad.code, 1, bad.stdout + bad.stderr);
  expectAll(bad.stdout, [
    "bridge br-vm has MTU 1500, the agent --mtu 9000",
    "-> ip link set br-vm mtu 9000",
    `token file ${other} is readable by others`,
    `proxy ${lab.proxyAddr}'s CA is not the one the token pins`,
    "fast paths are accepted on a port chosen at start",
    "3 problem(s) to fix.",
  ]);
});
