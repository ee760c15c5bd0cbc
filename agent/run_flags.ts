/**
 * The Deno flags the agent runs with: exactly the permissions it uses, and one V8 setting.
 * `deno task agent`, the compiled binary and the lab all take this list (a test checks
 * deno.json against it).
 *
 * - net: links, the control API, CLI subcommands reaching the API
 * - read/write: the state directory (CA, certificates, token), token and config files
 * - ffi: TAP devices, libpcap, bridge enslaving and socket options (ffi/)
 * - env=VNET_LIBPCAP: an override of where libpcap is; LOG_TOKENS, LOG_STREAM: the YAML
 *   parser (npm:yaml) reads these debug switches on every parse, and without them a config
 *   file fails under the task's permissions ("Requires env access")
 * - sys=hostname: the default host name
 * - run: the proxy's `--migrate-hook` (a program the operator names, run as `CMD VM-MAC
 *   FROM-HOST TO-HOST` without a shell). It widens nothing that matters: `--allow-ffi`
 *   already lets the agent call any C function (execve included), so Deno's permissions never
 *   confined this process's power to start programs; what confines the installed agent is
 *   its systemd sandbox and user. Only the proxy runs a program, and only the one configured.
 * - v8 --max-semi-space-size=2: V8 sizes its young generation by the allocation rate, and a
 *   host moving gigabits allocates a few small objects per frame (typed-array views that JS
 *   cannot avoid), so the young generation grew to 16 MiB semi-spaces that stay resident:
 *   V8's heap held 20-40 MiB with 10-13 MiB in use. 2 MiB semi-spaces scavenge more often
 *   (each takes well under a millisecond) and measured no slower.
 *
 * @module
 */

/** Flags for `deno run` / `deno compile`. */
export const AGENT_RUN_FLAGS: readonly string[] = [
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-ffi",
  "--allow-env=VNET_LIBPCAP,LOG_TOKENS,LOG_STREAM",
  "--allow-sys=hostname",
  "--allow-run",
  "--v8-flags=--max-semi-space-size=2",
];
