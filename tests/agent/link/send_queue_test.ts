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
