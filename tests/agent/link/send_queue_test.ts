import { assert, assertEquals } from "../../support/assert.ts";
import { SendQueue } from "../../../agent/link/send_queue.ts";
import {
  MessageType,
  PREAMBLE_LEN,
  StreamReader,
  writePreamble,
} from "../../../agent/link/wire.ts";

Deno.test("send queue: frames queued during a write leave together in the next one", () => {
  const q = new SendQueue({ capacityBytes: 1 << 20 });
  q.pushFrame(new Uint8Array(100).fill(1));
  const first = q.take()!;
  assertEquals(first.length, 104);
  for (let i = 0; i < 5; i++) q.pushFrame(new Uint8Array(100).fill(2 + i));
  assertEquals(q.take(), null, "one batch in flight at a time");
  q.release();
  const second = q.take()!;
  assertEquals(second.length, 5 * 104);
  // The batch decodes back into the same five frames.
  const r = new StreamReader();
  const s = r.space();
  writePreamble(s, 0);
  s.set(second, PREAMBLE_LEN);
  r.commit(PREAMBLE_LEN + second.length);
  const firsts: number[] = [];
  for (let m = r.next(); m; m = r.next()) {
    assertEquals(m.type, MessageType.FRAME);
    firsts.push(m.body[0]);
  }
  assertEquals(firsts, [2, 3, 4, 5, 6]);
});

Deno.test("send queue: bounded; frames dropped and counted, control has headroom", () => {
  const q = new SendQueue({ capacityBytes: 100_000 });
  let accepted = 0;
  for (let i = 0; i < 10; i++) if (q.pushFrame(new Uint8Array(20_000))) accepted++;
  assertEquals(accepted, 4);
  assertEquals(q.stats.frameDrops, 6);
  assert(q.pushMessage(MessageType.CONTROL, new Uint8Array(50_000)), "control uses the headroom");
  assertEquals(q.pushMessage(MessageType.CONTROL, new Uint8Array(100_000)), false);
  assertEquals(q.stats.controlDrops, 1);
});

Deno.test("send queue: grown buffers go back to their first size after a quiet spell", () => {
  let now = 0;
  const q = new SendQueue({ capacityBytes: 1 << 20, initialBytes: 4096, now: () => now });
  const frame = new Uint8Array(1000);
  const drain = () => {
    const batch = q.take();
    q.release();
    return batch?.length ?? 0;
  };
  for (let i = 0; i < 100; i++) assert(q.pushFrame(frame));
  assertEquals(drain(), 100 * 1004, "a 100 KB burst leaves in one batch");
  assert(q.bufferBytes > 100_000, `grown: ${q.bufferBytes}`);
  // Small batches, but the burst was recent: the buffers are kept for the next one.
  for (let t = 0; t < 4; t++) {
    now += 1000;
    q.pushFrame(frame);
    drain();
  }
  assert(q.bufferBytes > 100_000, "kept while bursts may come back");
  // Quiet for SHRINK_AFTER_MS: both buffers shrink, one per batch.
  now += 2000;
  for (let i = 0; i < 2; i++) {
    q.pushFrame(frame);
    assertEquals(drain(), 1004);
  }
  assertEquals(q.bufferBytes, 2 * 4096);
  // And grow again when needed, with nothing lost.
  for (let i = 0; i < 50; i++) assert(q.pushFrame(frame));
  assertEquals(drain(), 50 * 1004);
});
