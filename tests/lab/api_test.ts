/**
 * Root-only: the control API bound to the proxy's underlay address (not loopback) speaks only
 * TLS, with a certificate from the proxy's CA for that address, and demands the bearer token
 * from the state directory; the CLI, given the state dir, trusts the CA and sends the token.
 */
import { labTest } from "../support/lab_test.ts";
import { assert, assertEquals } from "../support/assert.ts";

labTest("lab api: off loopback the API speaks TLS and needs the token", {
  hosts: 1,
  lan: false,
  proxyArgs: ["--api", "10.77.0.1:7801"],
}, async (lab) => {
  await lab.startAll();
  /** The HTTP status of GET `path` on the proxy's API, asked from namespace `ns`. */
  const fetchFrom = (ns: string, headers: string[] = [], path = "/api/status") =>
    lab.exec(ns, [
      "curl",
      "-s",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      "--cacert",
      `${lab.stateDir}/ca.crt`,
      ...headers,
      `https://10.77.0.1:7801${path}`,
    ]);
  const clear = await lab.exec(lab.hostNs(1), [
    "curl",
    "-s",
    "-o",
    "/dev/null",
    "-w",
    "%{http_code}",
    "http://10.77.0.1:7801/api/status",
  ]);
  assertEquals(clear.stdout, "000", "no answer in clear");
  assertEquals((await fetchFrom(lab.hostNs(1))).stdout, "401", "no token, no answer");
  const token = (await Deno.readTextFile(`${lab.stateDir}/api.token`)).trim();
  assertEquals((await Deno.stat(`${lab.stateDir}/api.token`)).mode! & 0o777, 0o600);
  assertEquals(
    (await fetchFrom(lab.hostNs(1), ["-H", `Authorization: Bearer ${token}`])).stdout,
    "200",
  );
  const cli = await lab.exec(
    lab.hostNs(1),
    lab.agentCommand([
      "status",
      "--json",
      "--api",
      "10.77.0.1:7801",
      "--state-dir",
      lab.stateDir,
    ]),
  );
  assertEquals(cli.code, 0, cli.stderr);
  assertEquals(JSON.parse(cli.stdout).hosts.length, 1);
  const page = await fetchFrom(lab.hostNs(1), [], "/");
  assertEquals(page.stdout, "401", "the page is behind the token too");
  const down = await lab.exec(
    lab.hostNs(1),
    lab.agentCommand(["status", "--api", "10.77.0.1:7999", "--state-dir", lab.stateDir]),
  );
  assert(down.code !== 0 && /is `agent --proxy` running/i.test(down.stderr), down.stderr);
});
