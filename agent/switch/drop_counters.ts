/**
 * Why the switch drops frames. Every drop is counted under exactly one reason (wireguard-go's
 * uncounted drops are what we avoid); the reasons live apart from switch.ts because the API,
 * the metrics page and the CLI read them without switching anything.
 *
 * @module
 */

/** Why the switch dropped frames; every drop is counted under one reason. */
export interface DropCounters {
  /** Shorter than an Ethernet header. */
  malformed: number;
  /** Source MAC is a group address: never valid. */
  badSource: number;
  /** Source MAC belongs to a local VM but came from a link: a loop or a spoof. */
  loop: number;
  /**
   * Source MAC is active behind another port (refused by the anti-spoofing rule), or a
   * fast-path peer sent a source the proxy does not place behind it.
   */
  spoofed: number;
  /**
   * Source MAC is held by another port whose host is being asked whether the VM left it:
   * dropped until it answers (a migrating VM's first frames on its new host).
   */
  claimPending: number;
  /** A port already holds as many MACs as one port may: a new source was not learned. */
  portFull: number;
  /** Destination lives behind the port the frame came from. */
  hairpin: number;
  /** A broadcast or multicast frame arrived on a fast-path link. */
  groupOnFastPath: number;
  /** A rule said drop. */
  rule: number;
  /** No port to send to (e.g. a host with no proxy link yet). */
  noRoute: number;
  /** The MAC table was full, so a new source could not be learned. */
  tableFull: number;
}

/**
 * Fresh, zeroed drop counters.
 *
 * @example
 * ```ts
 * import { newDropCounters } from "./drop_counters.ts";
 * if (Object.values(newDropCounters()).some((n) => n !== 0)) throw new Error("not zero");
 * ```
 */
export function newDropCounters(): DropCounters {
  return {
    malformed: 0,
    badSource: 0,
    loop: 0,
    spoofed: 0,
    claimPending: 0,
    portFull: 0,
    hairpin: 0,
    groupOnFastPath: 0,
    rule: 0,
    noRoute: 0,
    tableFull: 0,
  };
}
