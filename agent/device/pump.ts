/**
 * The outbound loop of an agent: device -> switch -> link queues.
 *
 *     device.read(batch)          drains everything ready (synchronous reads until EAGAIN),
 *       for each packet:          then waits once for readability
 *         switch.forward(...)     rule lookup, MAC table, copy into each chosen link's queue
 *     (microtask)                 every link touched by the batch writes it in one write
 *
 * One owner, one way to stop (the signal), no allocation per frame: the batch's buffers are
 * reused for every read.
 *
 * @module
 */

import { type Clock, systemClock } from "../clock.ts";
import type { Switch } from "../switch/switch.ts";
import { type Device, PacketBatch } from "./device.ts";
import { logger } from "../log.ts";

/**
 * Batch size: frames read per wake-up at most. Drains of a busy TAP were seen to hold up to
 * about 21 superframes; each slot is a 64 KiB buffer, so more slots would only cost memory.
 */
export const PUMP_BATCH = 32;

/**
 * Reads `device` until `signal` aborts and hands every packet to `sw` as coming from the
 * port named `portName`. Resolves when stopped; a device error ends the loop with a log line.
 */
export async function pumpDevice(
  device: Device,
  sw: Switch,
  options: { portName?: string; signal: AbortSignal; batch?: PacketBatch; clock?: Clock },
): Promise<void> {
  const batch = options.batch ?? new PacketBatch(PUMP_BATCH);
  const port = options.portName ?? "device";
  const log = logger("device");
  const clock = options.clock ?? systemClock;
  while (!options.signal.aborted) {
    let n: number;
    try {
      n = await device.read(batch, options.signal);
    } catch (e) {
      log.error("Stopped reading device {name}: {error}", {
        name: device.name,
        error: (e as Error).message,
      });
      return;
    }
    const now = clock.now();
    for (let i = 0; i < n; i++) sw.forward(batch.packet(i), port, now);
    // The links' flushes are queued microtasks: let them write before the next read attempt,
    // which most often finds the device empty and would only delay them.
    await null;
  }
}
