/**
 * The proxy's API as the CLI calls it: testbed/api_client.ts (shared with the benchmarks).
 *
 * @module
 */
export * from "../../testbed/api_client.ts";
