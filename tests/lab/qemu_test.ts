/**
 * Root and QEMU: real hypervisor guests on the overlay. A virtio-net NIC behind QEMU's own TAP
 * on a host's bridge, as libvirt, Proxmox and plain QEMU set it up; offloads on (the guest's
 * TCP sends TSO superframes); QEMU's own live migration, with the source quit afterwards as
 * libvirt does; and migrations that are cancelled or fail, which must change nothing.
 *
 * Timings are bench:migration's figures; these tests assert what must be true.
 */
import { qemuLabTest } from "../support/lab_test.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { FAST_VTTIF, type Lab } from "../../testbed/lab.ts";
import { QemuGuest } from "../../testbed/qemu/guest.ts";
import { measureQemuMove, PingWatch } from "../../testbed/migrate.ts";

/** SHA-256 of what `wget URL` returns, computed where the fetch runs (a namespace). */
async function fetchDigest(lab: Lab, ns: string, url: string): Promise<string> {
  const r = await lab.exec(ns, ["sh", "-c", `busybox wget -q -O - ${url} | sha256sum`]);
  assertEquals(r.code, 0, `wget ${url} in ${ns}: ${r.stderr}`);
  return r.stdout.split(" ")[0];
}

/** The guest's own digest of its /www/blob. */
async function guestBlobDigest(guest: QemuGuest): Promise<string> {
  const r = await guest.exec("cat /www/blob.sha256");
  assertEquals(r.code, 0, r.output);
  return r.output.trim();
}

/** Frames and bytes the host's switch read from its device (the TAP on the VMs' bridge). */
async function deviceRx(lab: Lab, host: number): Promise<{ frames: number; bytes: number }> {
  const s = await lab.hostStatus(host);
  return { frames: s.ports.device.rxFrames, bytes: s.ports.device.rxBytes };
}

/** Waits until the proxy lists a fast path between hosts `a` and `b` that is up. */
async function waitFastPath(lab: Lab, a: number, b: number, timeoutMs: number): Promise<void> {
  const want = [`h${a}`, `h${b}`].sort().join();
  const until = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < until) {
    const links = await lab.agentJson("links");
    last = JSON.stringify(links.fastPaths);
    if (
      links.fastPaths.some((f: { hosts: string[]; phase: string }) =>
        [...f.hosts].sort().join() === want && f.phase === "up"
      )
    ) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no fast path ${want} up within ${timeoutMs} ms; fast paths: ${last}`);
}

qemuLabTest(
  "qemu: a guest reaches a guest, a namespace VM and the LAN; TCP intact with virtio offloads",
  { hosts: 2, hostApi: true },
  async (lab) => {
    await lab.startAll();
    const [g1, g2] = await Promise.all([
      QemuGuest.start(lab, { host: 1, index: 1 }),
      QemuGuest.start(lab, { host: 2, index: 2 }),
    ]);
    const vm2 = lab.vms[1]; // the namespace VM on host 2

    // Pings, started inside the guest and towards it.
    for (const ip of [vm2.ip, lab.lanIp, g2.ip]) {
      const r = await g1.exec(`ping -c 3 -W 2 ${ip}`);
      assertEquals(r.code, 0, `guest 1 pings ${ip}: ${r.output}`);
    }
    assertEquals((await lab.ping(vm2.ns, g1.ip, { count: 3 })).received, 3, "VM 2 pings guest 1");

    // TCP from the guest (its stack segments with TSO: superframes on h1's bridge) to the LAN.
    const before = await deviceRx(lab, 1);
    const lanGot = await fetchDigest(lab, lab.lanNs, `http://${g1.ip}/blob`);
    assertEquals(lanGot, await guestBlobDigest(g1), "the LAN fetched guest 1's 4 MiB intact");
    const after = await deviceRx(lab, 1);
    const meanFrame = (after.bytes - before.bytes) / (after.frames - before.frames);
    console.log(`h1 read ${after.frames - before.frames} frames, ${meanFrame.toFixed(0)} B mean`);
    assert(
      meanFrame > 1514,
      `h1's agent read frames of ${meanFrame.toFixed(0)} B on average from the guest's TAP: ` +
        "no superframes, so the virtio offloads are off",
    );

    // TCP into a guest, from the other guest and from a namespace VM.
    const g1FromG2 = await g1.exec(`wget -q -O - http://${g2.ip}/blob | sha256sum`, 120_000);
    assertEquals(g1FromG2.code, 0, g1FromG2.output);
    assertEquals(g1FromG2.output.split(" ")[0], await guestBlobDigest(g2), "guest 2 -> guest 1");

    const www = await Deno.makeTempDir({ dir: lab.dir });
    const blob = crypto.getRandomValues(new Uint8Array(65536));
    const chunks = Array.from({ length: 32 }, () => blob); // 2 MiB
    await Deno.writeFile(`${www}/blob`, new Uint8Array(await new Blob(chunks).arrayBuffer()));
    const expected = [
      ...new Uint8Array(
        await crypto.subtle.digest("SHA-256", await new Blob(chunks).arrayBuffer()),
      ),
    ].map((b) => b.toString(16).padStart(2, "0")).join("");
    await lab.spawn("httpd-vm2", vm2.ns, ["busybox", "httpd", "-f", "-p", "8080", "-h", www]);
    let fromVm = { code: -1, output: "" };
    for (let i = 0; i < 20 && fromVm.code !== 0; i++) { // until httpd listens
      fromVm = await g1.exec(`wget -q -O - http://${vm2.ip}:8080/blob | sha256sum`, 120_000);
      if (fromVm.code !== 0) await new Promise((r) => setTimeout(r, 100));
    }
    assertEquals(fromVm.code, 0, fromVm.output);
    assertEquals(fromVm.output.split(" ")[0], expected, "VM 2 -> guest 1");
  },
);

qemuLabTest(
  "qemu: QEMU's live migration is followed, nothing stale is left, the fast path re-planned",
  { hosts: 3, lan: false, hostApi: true, proxyArgs: FAST_VTTIF, hostArgs: FAST_VTTIF },
  async (lab) => {
    await lab.startAll();
    const guest = await QemuGuest.start(lab, { host: 1, index: 1 });
    const vm3 = lab.vms[2];
    // VM 3 sends to the guest steadily: a fast path h1-h3 carries it.
    await lab.spawn("traffic-vm3", vm3.ns, [
      Deno.execPath(),
      "run",
      "--allow-net",
      new URL("../../testbed/traffic.ts", import.meta.url).pathname,
      "--to",
      guest.ip,
      "--kbps",
      "4000",
      "--seconds",
      "120",
    ]);
    await waitFastPath(lab, 1, 3, 20_000);
    const spoofedBefore = (await lab.agentJson("status")).drops.spoofed;

    const m = await measureQemuMove(lab, { guest, toHost: 2, observerNs: vm3.ns });
    console.log(
      `QEMU migration ${m.totalMs} ms (downtime ${m.downtimeMs} ms); pings answered again ` +
        `${m.recoveryMs.toFixed(0)} ms after the guest resumed, forwarding updated everywhere ` +
        `in ${m.forwardingMs} ms, ${m.lostDuringMove} pings lost during the move`,
    );
    assertEquals(m.lostAfterRecovery, 0, "no pings lost once the guest answered again");
    assertEquals(guest.host, 2);
    assertEquals(await guest.runState(), "running");

    // Nothing stale: every host reaches it, the old one included, and only h2 has it locally.
    for (const vm of lab.vms) {
      const r = await lab.ping(vm.ns, guest.ip, { count: 3, intervalS: 0.05 });
      assertEquals(r.received, 3, `from ${vm.ns}: ${r.output}`);
    }
    assert(!(await lab.hostStatus(1)).vms.includes(guest.mac), "h1 still lists the guest");
    assert((await lab.hostStatus(2)).vms.includes(guest.mac), "h2 does not list the guest");
    const vms = await lab.agentJson("vms");
    assertEquals(vms.find((v: { mac: string }) => v.mac === guest.mac)?.host, "h2");

    // The pair re-planned: h2-h3 now carries VM 3's traffic to the guest.
    await waitFastPath(lab, 2, 3, 20_000);
    const spoofedAfter = (await lab.agentJson("status")).drops.spoofed;
    console.log(`frames refused as spoofed during the migration: ${spoofedAfter - spoofedBefore}`);
  },
);

qemuLabTest(
  "qemu: a cancelled and a failed migration leave the guest and all forwarding where they were",
  { hosts: 2, lan: false, hostApi: true },
  async (lab) => {
    await lab.startAll();
    const guest = await QemuGuest.start(lab, { host: 1, index: 1 });
    const vm2 = lab.vms[1];
    const watch = await PingWatch.start(lab, vm2.ns, guest.ip);
    const startedAt = Date.now();
    try {
      await watch.waitReplies(5, 10_000);
      assertEquals(await guest.abortedMigration(2, "cancel"), "cancelled");
      assertEquals(await guest.runState(), "running");
      assertEquals(await guest.abortedMigration(2, "kill-destination"), "failed");
      assertEquals(await guest.runState(), "running");
      await watch.waitReplies((await watch.replies()).length + 10, 5000);
    } finally {
      await watch.stop();
    }
    assertEquals(guest.host, 1);
    const events = await lab.agentJson("events");
    const moves = events.filter((e: { change?: string; mac?: string; at: number }) =>
      e.change === "moved" && e.mac === guest.mac && e.at >= startedAt
    );
    assertEquals(moves, [], "the proxy moved the guest");
    assertEquals(
      (await lab.agentJson("vms")).find((v: { mac: string }) => v.mac === guest.mac)?.host,
      "h1",
    );
    assert((await lab.hostStatus(1)).vms.includes(guest.mac), "h1 lost the guest");
    assert(!(await lab.hostStatus(2)).vms.includes(guest.mac), "h2 claims the guest");
    const replies = await watch.replies();
    const lost = replies.at(-1)!.seq - replies[0].seq + 1 - replies.length;
    console.log(`${replies.length} replies, ${lost} pings lost across both aborted migrations`);
    assertEquals(lost, 0, "pings lost while migrations were cancelled or failed");
  },
);
