// @ts-check
/**
 * Words and numbers as the live page shows them: rates, times, and one timeline line per
 * event. Pure functions of their arguments (and, for `ago`, of the browser's clock).
 *
 * @typedef {import("../event_types.ts").VnetEvent} VnetEvent
 */

/**
 * A rate in B/s, kB/s, MB/s or GB/s (formatRate in agent/rate.ts, repeated for the browser).
 *
 * @param {number} bytesPerSec
 * @returns {string}
 */
export function rate(bytesPerSec) {
  if (!Number.isFinite(bytesPerSec) || bytesPerSec <= 0) return "0 B/s";
  const units = ["B/s", "kB/s", "MB/s", "GB/s"];
  let v = bytesPerSec;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v >= 100 || i === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

/**
 * The local time of day to the millisecond, for the timeline.
 *
 * @param {number} ms since epoch
 * @returns {string}
 */
export function clock(ms) {
  const d = new Date(ms);
  /** @type {(n: number, w?: number) => string} */
  const p = (n, w = 2) => String(n).padStart(w, "0");
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${
    p(d.getMilliseconds(), 3)
  }`;
}

/**
 * How long ago `ms` was, roughly.
 *
 * @param {number} ms since epoch
 * @returns {string}
 */
export function ago(ms) {
  const s = Math.max(0, (Date.now() - ms) / 1000);
  if (s < 60) return `${s.toFixed(0)} s ago`;
  if (s < 3600) return `${(s / 60).toFixed(0)} min ago`;
  return `${(s / 3600).toFixed(1)} h ago`;
}

/** Host names in human order (h2 before h10). */
export const byName = new Intl.Collator(undefined, { numeric: true }).compare;

/**
 * The two hosts of a fast path's pair (`a|b`, or already split).
 *
 * @param {string | string[]} pair
 * @returns {string[]}
 */
function pairHosts(pair) {
  return Array.isArray(pair) ? pair : String(pair).split("|");
}

/**
 * One line for the timeline. Unknown types (a newer proxy) are shown as they came.
 *
 * @param {VnetEvent} e
 * @returns {string}
 */
export function describe(e) {
  switch (e.type) {
    case "host":
      return `host ${e.host} ${e.state}` + ("from" in e && e.from ? ` from ${e.from}` : "") +
        ("reason" in e && e.reason ? `: ${e.reason}` : "");
    case "link": {
      const [a, b] = pairHosts(e.pair);
      return `fast path ${a} ⇄ ${b} ${e.phase}` +
        ("reason" in e && e.reason ? `: ${e.reason}` : "");
    }
    case "topology": {
      const added = Array.isArray(e.added) ? e.added.length : 0;
      const removed = Array.isArray(e.removed) ? e.removed.length : 0;
      return `topology ${e.from} → ${e.to} (+${added} −${removed} edges)` +
        (e.toSummary ? `: ${e.toSummary}` : "");
    }
    case "reaction":
      return e.kind === "migration"
        ? `VM ${e.mac} moved: forwarding updated everywhere in ${e.ms} ms`
        : `overlay adapted in ${e.ms} ms: ${e.links} fast paths, rules active`;
    case "vm":
      if (e.change === "moved") return `VM ${e.mac} moved ${e.from} → ${e.to}`;
      if (e.change === "refused") {
        return `VM ${e.mac} refused from ${e.claimedBy}: active behind ${e.heldBy}`;
      }
      return `VM ${e.mac} ${e.change ?? "seen"} at ${e.port}`;
    case "placement":
      return `migration of VM ${e.vm} ${e.from} → ${e.to}: ${e.phase}` +
        (e.reason ? ` (${e.reason})` : "");
    default:
      return `${/** @type {{ type: string }} */ (e).type} ${JSON.stringify(e)}`;
  }
}
