/**
 * Root-only data-plane tests on the namespace lab: real kernels in VM namespaces, real
 * agents started with the real CLI. Without root they are skipped with the reason.
 */
import { assert, assertEquals } from "../support/assert.ts";
import { FAST_FAILOVER, Lab, labUnavailable } from "../../testbed/lab.ts";
import { iperf } from "../../testbed/iperf.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

const why = labUnavailable();
const ignore = why !== null;
const name = (n: string) => (why ? `${n} (skipped: ${why})` : n);
/** Faster failure detection so the fault tests stay short. */
const FAST = [...FAST_FAILOVER];

/** Bits per second of a TCP stream from VM `from` to VM `to`; throws when it fails. */
async function vmIperf(lab: Lab, from: number, to: number, seconds = 2): Promise<number> {
  const r = await iperf(lab, {
    fromNs: lab.vms[from].ns,
    toNs: lab.vms[to].ns,
    toIp: lab.vms[to].ip,
    seconds,
  });
  return r.bitsPerSecond;
}

Deno.test({
  name: name("lab: VMs on different hosts and the LAN reach each other; faults heal"),
  ignore,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    // Adaptation off: these steps test the star itself (a fast path would bypass the proxy).
    const lab = await Lab.create({
      hosts: 2,
      hostArgs: FAST,
      proxyArgs: [...FAST, "--no-adapt"],
    });
    try {
      await lab.startAll();
      const [vm1, vm2] = lab.vms;

      await t.step("ping VM to VM across hosts (ARP through the proxy's flooding)", async () => {
        const r = await lab.ping(vm1.ns, vm2.ip, { count: 5 });
        assertEquals(r.received, 5, r.output);
      });
      await t.step("every agent waits for its TAP on the event loop's thread", async () => {
        const logs = await lab.logs();
        assert(!/on a worker thread/.test(logs), logs);
      });
      await t.step("ping a VM to the LAN namespace behind the proxy", async () => {
        const r = await lab.ping(vm2.ns, lab.lanIp, { count: 3 });
        assertEquals(r.received, 3, r.output);
      });
      await t.step("iperf3 TCP between VMs on different hosts moves data", async () => {
        const bps = await vmIperf(lab, 0, 1);
        assert(bps > 10e6, `iperf3 moved only ${bps} bit/s`);
      });
      await t.step(
        "8000-byte ICMP (fragmented by the VMs) and 802.1Q-tagged frames pass untouched",
        async () => {
          const r = await lab.exec(vm1.ns, ["ping", "-c", "2", "-s", "8000", "-W", "2", vm2.ip]);
          assert(/2 received/.test(r.stdout), r.stdout + r.stderr);
          const capture = await lab.spawn("tcpdump-vlan", vm2.ns, [
            "timeout",
            "10",
            "tcpdump",
            "-i",
            "eth0",
            "-c",
            "1",
            "-nn",
            "-e",
            "-x",
            "vlan",
            "42",
          ]);
          // tcpdump says so on stderr once its filter is attached.
          await lab.waitForLog(capture, /listening on eth0/, 10_000);
          await lab.exec(vm1.ns, [
            Deno.execPath(),
            "run",
            "--allow-ffi",
            "--allow-env",
            `${ROOT}testbed/inject_frame.ts`,
            "eth0",
            vm2.mac,
            vm1.mac,
            "42",
            "5",
          ], false);
          await capture.status;
          const seen = await Deno.readTextFile(capture.logPath);
          assert(/vlan 42/.test(seen), `no VLAN 42 frame reached VM 2:\n${seen}`);
        },
      );
      await t.step(
        "a rule added at runtime with the CLI redirects traffic; deleting it restores",
        async () => {
          const cli = (...args: string[]) => lab.exec(lab.proxyNs, lab.proxyCli(args), false);
          await cli("rules", "add", vm1.mac, vm2.mac, "device");
          const cut = await lab.ping(vm1.ns, vm2.ip, { count: 3, timeoutS: 1 });
          assertEquals(cut.received, 0, "frames from VM 1 to VM 2 now go to the LAN port");
          const listed = JSON.parse((await cli("rules", "list", "--json")).stdout);
          assert(listed.proxy[0].frames >= 3, `rule counters: ${JSON.stringify(listed)}`);
          await cli("rules", "del", vm1.mac, vm2.mac);
          assertEquals((await lab.ping(vm1.ns, vm2.ip, { count: 3 })).received, 3);
        },
      );
      await t.step("a host whose underlay goes away reconnects and traffic resumes", async () => {
        const h1 = lab.processes.find((p) => p.name === "h1")!;
        await lab.exec(lab.hostNs(1), ["ip", "link", "set", "eth0", "down"], false);
        await lab.waitForLog(h1, /Lost proxy link/, 10_000);
        await lab.exec(lab.hostNs(1), ["ip", "link", "set", "eth0", "up"], false);
        await lab.waitForLog(h1, /Joined proxy/, 15_000, 1);
        assert(await lab.waitPing(vm1.ns, vm2.ip, 10_000), "no traffic after the reconnect");
      });
      await t.step(
        "a wrong token or a tampered CA fingerprint is refused; others keep working",
        async () => {
          const good = (await Deno.readTextFile(`${lab.stateDir}/join.token`)).trim();
          const [prefix, id, secret, caHash] = good.split(".");
          const flip = (s: string) => (s[0] === "A" ? "B" : "A") + s.slice(1);
          const cases = [
            {
              file: "wrong-secret.token",
              text: [prefix, id, flip(secret), caHash].join("."),
              expect: /wrong join token secret/,
            },
            {
              file: "wrong-ca.token",
              text: [prefix, id, secret, flip(caHash.slice(0, -1)) + caHash.slice(-1)].join("."),
              expect: /fingerprint|hash/i,
            },
          ];
          for (const c of cases) {
            const path = `${lab.dir}/${c.file}`;
            await Deno.writeTextFile(path, c.text, { mode: 0o600 });
            const p = await lab.spawn(
              c.file,
              lab.hostNs(2),
              lab.agentCommand([
                "--join",
                lab.proxyAddr,
                "--token-file",
                path,
                "--name",
                "intruder",
                "--tap",
                "vnet9",
              ]),
            );
            const status = await Promise.race([
              p.status,
              new Promise<null>((r) => setTimeout(() => r(null), 20_000)),
            ]);
            const log = await Deno.readTextFile(p.logPath);
            assert(
              status !== null && !status.success,
              `the agent with ${c.file} should exit with an error:\n${log}`,
            );
            assert(c.expect.test(log), `expected ${c.expect} in:\n${log}`);
          }
          const proxy = lab.processes.find((p) => p.name === "proxy")!;
          await lab.waitForLog(proxy, /Refused connection .*wrong join token secret/, 5000);
          assertEquals((await lab.ping(vm1.ns, vm2.ip, { count: 3 })).received, 3);
        },
      );
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${await lab.logs()}`);
    } finally {
      await lab.close();
    }
  },
});

Deno.test({
  name: name("lab: pcap mode (hosts and the proxy capture existing veths) carries ping and iperf3"),
  ignore,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    // Hosts wait on a worker thread (the fallback), the proxy on its event loop: both ways.
    const lab = await Lab.create({
      hosts: 2,
      attach: "pcap",
      hostArgs: ["--device-wait", "thread"],
    });
    try {
      await lab.startAll();
      const r = await lab.ping(lab.vms[0].ns, lab.vms[1].ip, { count: 5 });
      assertEquals(r.received, 5, r.output);
      const lan = await lab.ping(lab.vms[1].ns, lab.lanIp, { count: 3 });
      assertEquals(lan.received, 3, `the proxy's pcap-attached LAN: ${lan.output}`);
      const bps = await vmIperf(lab, 0, 1);
      assert(bps > 10e6, `iperf3 moved only ${bps} bit/s`);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${await lab.logs()}`);
    } finally {
      await lab.close();
    }
  },
});

Deno.test({
  name: name(
    "lab: jumbo frames (MTU 9000) cross the overlay unfragmented; SIGTERM leaves nothing behind",
  ),
  ignore,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const lab = await Lab.create({ hosts: 2, lan: false, mtu: 9000 });
    try {
      await lab.startAll();
      const [vm1, vm2] = lab.vms;
      // 8972 bytes of ICMP payload + 28 of headers = a 9000-byte IP packet, DF set.
      const r = await lab.exec(vm1.ns, [
        "ping",
        "-c",
        "3",
        "-M",
        "do",
        "-s",
        "8972",
        "-W",
        "2",
        vm2.ip,
      ]);
      assert(/3 received/.test(r.stdout), r.stdout + r.stderr);
      const h2 = lab.processes.find((p) => p.name === "h2")!;
      const status = await lab.stop(h2, 5000);
      assertEquals(status.code, 0, "a clean stop exits 0");
      const tap = await lab.exec(lab.hostNs(2), ["ip", "link", "show", "vnet0"]);
      assert(tap.code !== 0, "the TAP device is gone after SIGTERM");
      const proxy = lab.processes.find((p) => p.name === "proxy")!;
      await lab.waitForLog(proxy, /Host h2 left: peer said goodbye: shutting down/, 5000);
      const proxyLog = await Deno.readTextFile(proxy.logPath);
      assert(!proxyLog.includes("TCP_NODELAY"), `the proxy could not disable Nagle:\n${proxyLog}`);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${await lab.logs()}`);
    } finally {
      await lab.close();
    }
  },
});
