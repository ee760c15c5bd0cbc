import assert from "node:assert/strict";
import { errnoName, hintFor, PcapError, SyscallError } from "../../ffi/errors.ts";

Deno.test("SyscallError message reads Cannot <action>: <detail>: ... (errno N CODE: text). hint", () => {
  const e = new SyscallError({
    syscall: "ioctl(TUNSETIFF)",
    errno: 1,
    action: "create TAP device",
    detail: "vnet0",
    description: "Operation not permitted",
  });
  assert.equal(
    e.message,
    "Cannot create TAP device: vnet0: ioctl(TUNSETIFF) failed " +
      "(errno 1 EPERM: Operation not permitted). " +
      "Run as root or grant CAP_NET_ADMIN (systemd: AmbientCapabilities=CAP_NET_ADMIN).",
  );
  assert.equal(e.name, "SyscallError");
  assert.equal(e.syscall, "ioctl(TUNSETIFF)");
  assert.equal(e.errno, 1);
  assert.equal(e.code, "EPERM");
  assert.ok(e instanceof Error);
});

Deno.test("hints: tun module for /dev/net/tun, interface not found for ENODEV, none otherwise", () => {
  assert.match(hintFor(2, "/dev/net/tun"), /modprobe tun/);
  assert.match(hintFor(19, "/dev/net/tun"), /modprobe tun/);
  assert.match(hintFor(19, "vnet0"), /^Interface not found/);
  assert.match(hintFor(13, "/dev/net/tun"), /Run as root.*\/dev\/net\/tun.*CAP_NET_ADMIN/);
  assert.equal(hintFor(2, "/etc/vnet.yaml"), "");
  assert.equal(hintFor(22, "vnet0"), "");
});

Deno.test("an explicit hint wins; no hint leaves no trailing text", () => {
  const custom = new SyscallError({
    syscall: "read",
    errno: 5,
    action: "read from TAP device",
    detail: "vnet0",
    hint: "Bring the interface up.",
  });
  assert.ok(custom.message.endsWith("(errno 5 EIO: EIO). Bring the interface up."));
  const bare = new SyscallError({ syscall: "read", errno: 22, action: "read", detail: "x" });
  assert.ok(bare.message.endsWith("(errno 22 EINVAL: EINVAL)."));
  assert.equal(bare.hint, "");
});

Deno.test("errnoName knows the common codes and names the rest E<n>", () => {
  assert.equal(errnoName(11), "EAGAIN");
  assert.equal(errnoName(16), "EBUSY");
  assert.equal(errnoName(3000), "E3000");
});

Deno.test("PcapError keeps libpcap's text and the status", () => {
  const e = new PcapError("pcap_activate", -8, "open capture on eth0", "You don't have permission");
  assert.equal(
    e.message,
    "Cannot open capture on eth0: You don't have permission (pcap_activate returned -8)",
  );
  assert.equal(e.status, -8);
  assert.equal(e.func, "pcap_activate");
});
