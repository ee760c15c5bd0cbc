/**
 * The Deno permissions the agent runs with: exactly what it uses. `deno task agent`, the
 * compiled binary and the lab all take this list (a test checks deno.json against it).
 *
 * - net: links, the control API, CLI subcommands reaching the API
 * - read/write: the state directory (CA, certificates, token), token and config files
 * - ffi: TAP devices, libpcap, bridge enslaving and socket options (ffi/)
 * - env=VNET_LIBPCAP: an override of where libpcap is
 * - sys=hostname: the default host name
 *
 * @module
 */

/** Permission flags for `deno run` / `deno compile`. */
export const AGENT_PERMISSIONS: readonly string[] = [
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-ffi",
  "--allow-env=VNET_LIBPCAP",
  "--allow-sys=hostname",
];
