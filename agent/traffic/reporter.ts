/**
 * The host's traffic reports to the proxy: every report interval, the counts since the last
 * report that left. While the uplink is down they keep accumulating (bounded by the counter)
 * and leave with the next report.
 *
 *     TrafficCounter ──report(interval)──> uplink (traffic message) ──> proxy's VTTIF
 *
 * @module
 */

import type { HostMessage } from "../control/messages.ts";
import type { Clock } from "../clock.ts";
import type { TrafficCounter } from "./counter.ts";

/** Where reports go and how often (read anew before every wait). */
export interface ReportTarget {
  current(): { sendControl(msg: HostMessage): boolean } | null;
  readonly reportEveryMs: number;
}

/** Sends `counter`'s reports through `uplink` until `signal` aborts. */
export async function reportTraffic(
  counter: TrafficCounter,
  uplink: ReportTarget,
  options: { clock: Clock; signal: AbortSignal },
): Promise<void> {
  const { clock, signal } = options;
  let last = clock.now();
  while (!signal.aborted) {
    await clock.sleep(uplink.reportEveryMs, signal);
    const link = uplink.current();
    if (signal.aborted || !link) continue;
    const now = clock.now();
    link.sendControl(counter.report(now - last));
    last = now;
  }
}
