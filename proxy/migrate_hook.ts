/**
 * The operator's migration hook (`--migrate-hook CMD`): how the proxy asks the hypervisors to
 * move a VM. It runs `CMD VM-MAC FROM-HOST TO-HOST` (CMD split at spaces, no shell, so a VM's
 * name can never become shell syntax), waits for it with a time limit, and keeps the end of
 * its output for the event that reports the move.
 *
 *     migrator -> hook.run(vm, from, to) -> CMD ... -> exit 0: the VM runs on TO-HOST
 *                                                   -> other code, killed at the limit: failed
 *
 * The agent needs `--allow-run` for it (agent/run_flags.ts).
 *
 * @module
 */

/** What a hook run came to. */
export interface HookResult {
  ok: boolean;
  /** The exit code, or null when it could not start or was killed. */
  code: number | null;
  /** The last lines of its stdout and stderr (at most 1 KiB), or why it did not run. */
  output: string;
}

/** Moves a VM from one host to another; the proxy's is {@linkcode commandHook}. */
export interface MigrateHook {
  /** Shown in `agent advise`. */
  readonly describe: string;
  run(vm: string, from: string, to: string, signal: AbortSignal): Promise<HookResult>;
}

/** The most output kept of a hook run. */
export const MAX_HOOK_OUTPUT = 1024;

/**
 * The hook that runs `command` with the VM, the old and the new host as its last arguments.
 *
 * @example
 * ```ts ignore
 * import { commandHook } from "./migrate_hook.ts";
 * const hook = commandHook("/usr/local/bin/move-vm --live", { timeoutMs: 600_000 });
 * const r = await hook.run("02:00:00:00:00:01", "h1", "h2", new AbortController().signal);
 * if (!r.ok) console.log(`exit ${r.code}: ${r.output}`);
 * ```
 */
export function commandHook(command: string, options: { timeoutMs: number }): MigrateHook {
  const [program, ...fixed] = command.trim().split(/\s+/);
  return {
    describe: command,
    async run(vm, from, to, signal) {
      const limit = AbortSignal.timeout(options.timeoutMs);
      const both = AbortSignal.any([signal, limit]);
      let out;
      try {
        out = await new Deno.Command(program, {
          args: [...fixed, vm, from, to],
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
          signal: both,
        }).output();
      } catch (e) {
        return { ok: false, code: null, output: `cannot run ${program}: ${(e as Error).message}` };
      }
      const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      const output = text.trim().slice(-MAX_HOOK_OUTPUT);
      if (limit.aborted) {
        return {
          ok: false,
          code: null,
          output: `killed after ${options.timeoutMs} ms${output ? `: ${output}` : ""}`,
        };
      }
      return { ok: out.success, code: out.signal ? null : out.code, output };
    },
  };
}
