import assert from "node:assert/strict";
import { DeviceWait } from "../../../agent/device/device_wait.ts";

Deno.test("DeviceWait reports the configured mode until a fallback happens", async () => {
  assert.equal(new DeviceWait("thread").mode, "thread");
  assert.equal(await new DeviceWait("thread").start(), null, "nothing to start on a thread");
  // Nothing is opened until a start or a wait: the mode is the configured one.
  assert.equal(new DeviceWait("event-loop").mode, "event-loop");
});

Deno.test("DeviceWait refuses a comeback count the poller cannot use", () => {
  assert.throws(() => new DeviceWait("event-loop", { comebackMicrotasks: -1 }), RangeError);
  // The thread mode has no poller to tune.
  assert.equal(new DeviceWait("thread", { comebackMicrotasks: -1 }).mode, "thread");
});
