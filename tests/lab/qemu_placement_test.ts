/**
 * Root and QEMU: migration as adaptation with real guests (testbed/qemu/guest_placement.ts).
 * Guest 1 on h1 fetches guest 2's blob from h2 across a 50 Mbit/s uplink; with migration on,
 * the proxy moves guest 2 next to guest 1 through its hook, which live-migrates it with QEMU's
 * own migration (a destination QEMU started by the hook, the source quit), and the fetches run
 * again. Asserted: one move, made by the hook and kept; the guest on h1 as the proxy, QEMU and
 * its record see it, with one QEMU left; the same boot; no fetch lost while it moved; intact
 * data; faster fetches.
 */
import { qemuLabTest } from "../support/lab_test.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { placementLab } from "../../testbed/placement_lab.ts";
import { runningDaemons } from "../../testbed/qemu/guest_dir.ts";
import { GUEST_PAIR, measureGuestPlacement } from "../../testbed/qemu/guest_placement.ts";
import { median } from "../../testbed/scale_probe.ts";

qemuLabTest(
  "qemu placement: the proxy's hook live-migrates a guest next to its busy peer, kept, faster",
  () => placementLab(GUEST_PAIR),
  async (lab) => {
    const r = await measureGuestPlacement(lab, GUEST_PAIR, (m) => console.log(m));
    const [move] = r.moves;
    console.log(
      `fetch of ${GUEST_PAIR.blobKiB} KiB: apart ${r.apartMs.join("/")} ms, placed ` +
        `${r.placedMs.join("/")} ms; move ${move?.from}->${move?.to} ${move?.outcome}, hook ` +
        `${(move?.hookDoneAt ?? NaN) - (move?.startedAt ?? NaN)} ms: ${move?.hook?.output}`,
    );
    assertEquals(r.moves.length, 1, "one move");
    assertEquals([move.vm, move.from, move.to], [r.server.mac, "h2", "h1"], "guest 2 to h1");
    assert(move.hook?.ok, `the hook failed: ${move.hook?.output}`);
    assert(/live-migrated QEMU guest/.test(move.hook.output), move.hook.output);
    assertEquals(move.outcome, "kept", move.why);
    assertEquals(r.serverHost, "h1", "agent vms has guest 2 on h1");
    assertEquals(r.server.host, 1, "guest 2's record has it on h1");
    assertEquals(await r.server.runState(), "running");
    const daemons = [...(await runningDaemons(lab.prefix)).keys()];
    assertEquals(daemons.filter((f) => f.includes("/g2x")).length, 1, daemons.join());
    assertEquals(r.loadErrors, [], "fetches failed while guest 2 moved");
    assertEquals(r.bootIds[0], r.bootIds[1], "guest 2 was rebooted, not migrated");
    assert(r.uptimes[1] > r.uptimes[0], `uptime ${r.uptimes.join(" -> ")}`);
    assert(r.intactAfter, "guest 1 fetched guest 2's blob intact after the move");
    assert(
      median(r.placedMs) < median(r.apartMs) / 2,
      `fetches after the move (${r.placedMs}) not twice as fast as apart (${r.apartMs})`,
    );
  },
);
