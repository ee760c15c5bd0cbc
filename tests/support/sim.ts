/**
 * The in-process overlay tests run on: testbed/overlay.ts (shared with the benchmarks).
 *
 * @module
 */
export * from "../../testbed/overlay.ts";
