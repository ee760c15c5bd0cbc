/**
 * The host's traffic reports to the proxy: every report interval, the counts since the last
 * report that left. An interval in which nothing was counted sends nothing: an idle host costs
 * the proxy no report at all (its keepalive says it is there), and a report always covers one
 * interval, since the counter was empty at the check before it. While the uplink is down the
 * counts keep accumulating (bounded by the counter) and leave with the next report.
 *
 *     TrafficCounter ──report(interval)──> uplink (traffic message) ──> proxy's VTTIF
 *                    └─ empty: nothing sent, the interval starts afresh
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
    if (!counter.empty) link.sendControl(counter.report(now - last));
    last = now;
  }
}
