/**
 * A full configuration for in-process tests: testbed/config.ts (shared with the benchmarks).
 *
 * @module
 */
export * from "../../testbed/config.ts";
