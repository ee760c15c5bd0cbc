/**
 * The shape of one setting (kind, default, help text, help section), shared by the tables
 * that make up the agent's settings (schema.ts and its per-section files).
 *
 * @module
 */

import type { Kind } from "./types.ts";

/** One setting's description. */
export interface Setting<T> {
  kind: Kind<T>;
  default: T;
  /** One-line help; the first word group says what it is, then why one would change it. */
  doc: string;
  /** Help section. */
  group:
    | "mode"
    | "attach"
    | "trust"
    | "data plane"
    | "vttif"
    | "adaptation"
    | "operator"
    | "logging";
  /** Placeholder for the value in `--help`, e.g. `ADDR:PORT`. */
  meta?: string;
}

/** Declares a setting, its default checked against its kind. */
export function setting<T>(s: Omit<Setting<T>, "default"> & { default: NoInfer<T> }): Setting<T> {
  return s;
}
