/**
 * The adaptation settings: fast paths (budget, pins, forbids) and VM placement (slots, the
 * migration hook, moves per plan, the gain asked for). Part of the one settings table
 * (schema.ts).
 *
 * @module
 */

import { bool, budget, duration, hostPairs, int, optional, real, text } from "./types.ts";
import { setting } from "./setting.ts";

/** The "adaptation" section of {@linkcode SETTINGS}. */
export const ADAPTATION_SETTINGS = {
  adapt: setting({
    kind: bool,
    default: true,
    group: "adaptation",
    doc: "Proxy: add fast-path links between hosts whose VMs talk heavily (false: star only).",
  }),
  fastPaths: setting({
    kind: budget(100_000),
    default: null as number | null,
    group: "adaptation",
    meta: "N|auto",
    doc: "Proxy: budget k of fast-path links; auto = as many as the topology needs.",
  }),
  pin: setting({
    kind: hostPairs,
    default: [] as [string, string][],
    group: "adaptation",
    meta: "A:B,...",
    doc: "Proxy: host pairs that always get a fast path (outside the budget).",
  }),
  forbid: setting({
    kind: hostPairs,
    default: [] as [string, string][],
    group: "adaptation",
    meta: "A:B,...",
    doc: "Proxy: host pairs that never get a fast path (wins over pin).",
  }),
  vmSlots: setting({
    kind: optional(int(0, 100_000)),
    default: null as number | null,
    group: "adaptation",
    meta: "N",
    doc: "Host: how many VMs this host can hold, told to the proxy for VM placement; a VM " +
      "is a MAC seen in unicast traffic (default: no room beyond the VMs it has).",
  }),
  migrateHook: setting({
    kind: optional(text("a command (split at spaces; no shell)", /^\S.*$/)),
    default: null as string | null,
    group: "adaptation",
    meta: "CMD",
    doc: "Proxy: migrates a VM when placement asks: run as CMD VM-MAC FROM-HOST TO-HOST " +
      "(e.g. a script calling virsh migrate); exit 0 when the VM runs on TO-HOST.",
  }),
  migrate: setting({
    kind: bool,
    default: false,
    group: "adaptation",
    doc: "Proxy: carry out VM placement plans through --migrate-hook, one move at a time " +
      "(false: advise only, see `agent advise`).",
  }),
  maxMoves: setting({
    kind: int(0, 10_000),
    default: 4,
    group: "adaptation",
    meta: "N",
    doc: "Proxy: at most this many VM migrations per placement plan (0: placement off).",
  }),
  minGain: setting({
    kind: real(0, 1),
    default: 0.1,
    group: "adaptation",
    meta: "FRACTION",
    doc: "Proxy: a placement plan is proposed only if it cuts the predicted cost by this " +
      "fraction, net of the moves' cost.",
  }),
  migrateSettle: setting({
    kind: duration(0, 3_600_000),
    default: 15_000,
    group: "adaptation",
    meta: "DURATION",
    doc: "Proxy: after a VM arrived on its new host, wait this long before measuring the " +
      "move's gain (VTTIF's smoothing must see the new traffic).",
  }),
};
