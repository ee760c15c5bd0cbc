/**
 * What the live page shares with the proxy's API: words that travel in its replies and
 * events. The TypeScript side defines them in proxy/api_types.ts; the page, plain browser JS
 * without a build step, has this copy, and tests/ui/constants_test.ts holds the two equal.
 */

/** Where `/api/vms` places a MAC on the proxy's own LAN (LAN_HOST in proxy/api_types.ts). */
export const LAN_HOST = "proxy (LAN)";

/** The event stream's event names (EVENT_TYPES in proxy/api_types.ts). */
export const EVENT_TYPES = ["host", "link", "topology", "reaction", "vm", "placement"];
