/**
 * The guest image: which kernel modules go in and in what order (dependencies first), and
 * the init script's contract with the lab (the ready line, the address from the command line).
 */
import { assert, assertEquals, assertThrows } from "../../support/assert.ts";
import {
  GUEST_MODULES,
  GUEST_READY,
  initScript,
  moduleLoadOrder,
} from "../../../testbed/qemu/guest_image.ts";

/** modules.dep as Debian 12's cloud kernel has it for the virtio network driver. */
const DEP = `kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_ring.ko:
kernel/fs/unrelated.ko:
`;

Deno.test("guest image: every module comes after what it needs, each once, nothing else", () => {
  const order = moduleLoadOrder(DEP, "", GUEST_MODULES);
  assertEquals(order.length, 8, order.join());
  assertEquals(new Set(order).size, order.length, "no module twice");
  assert(!order.some((p) => p.includes("unrelated")), "only what is needed");
  const deps = new Map(
    DEP.trim().split("\n").map((l) => {
      const [m, rest] = l.split(":");
      return [m, rest.trim().split(/\s+/).filter(Boolean)];
    }),
  );
  for (const [i, m] of order.entries()) {
    for (const need of deps.get(m)!) {
      assert(order.indexOf(need) < i, `${m} loads before its dependency ${need}`);
    }
  }
});

Deno.test("guest image: built-in modules need no file; a missing one is named with its chain", () => {
  const builtin = "kernel/drivers/virtio/virtio.ko\nkernel/drivers/virtio/virtio_ring.ko\n";
  const order = moduleLoadOrder(DEP, builtin, ["virtio_net"]);
  assertEquals(order, [
    "kernel/net/core/failover.ko",
    "kernel/drivers/net/net_failover.ko",
    "kernel/drivers/net/virtio_net.ko",
  ]);
  const noFailover = DEP.split("\n").filter((l) => !l.startsWith("kernel/net/core")).join("\n");
  assertThrows(
    () => moduleLoadOrder(noFailover, "", ["virtio_net"]),
    RangeError,
    "failover (virtio_net -> net_failover -> failover)",
  );
});

Deno.test("guest image: init loads the modules, takes vnet.ip and says when it is ready", () => {
  const script = initScript(["kernel/a/x.ko", "kernel/b/y.ko"]);
  assert(script.startsWith("#!/bin/busybox sh\n"), "runs under busybox");
  assert(script.includes("for m in x.ko y.ko;"), "modules in the given order");
  assert(script.includes("vnet.ip=*"), "address from the kernel command line");
  assert(script.includes(`echo "${GUEST_READY} `), "ready line");
  assert(script.includes("httpd -p 80 -h /www"), "HTTP service");
});
