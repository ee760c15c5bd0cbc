/**
 * The agent run the way users run it: `deno task agent ARGS`, with the task's exact permissions
 * (deno.json), as a subprocess with no terminal; shared by the tests that must see what users
 * see (tests/main_test.ts, the operator-state restart test).
 *
 * @module
 */

const ROOT = new URL("../..", import.meta.url).pathname;

/** What a finished run printed, and its exit code. */
export interface AgentRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** An agent started in the background (see {@linkcode spawnAgentTask}). */
export interface SpawnedAgent {
  child: Deno.ChildProcess;
  /** Everything it printed on stdout (after it stopped). */
  stdout: Promise<string>;
  /**
   * Reads stderr until it contains `text`; throws with what came when the process closed it
   * or 20 s passed. Resolves to all of stderr so far.
   */
  until(text: string): Promise<string>;
  /** SIGTERM, then the exit status once the streams are drained. */
  stop(): Promise<Deno.CommandStatus>;
}

/**
 * Runs the agent the way users do: `deno task agent ARGS` (the task's exact permissions), as a
 * subprocess with no terminal (stdin closed), or the compiled binary.
 */
export async function agentTask(args: string[], binary?: string): Promise<AgentRun> {
  const cmd = binary
    ? new Deno.Command(binary, { args, stdin: "null", stdout: "piped", stderr: "piped" })
    : new Deno.Command(Deno.execPath(), {
      args: ["task", "--quiet", "agent", ...args],
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    });
  const out = await cmd.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** `deno task agent ARGS` started in the background, no terminal; its stderr read as it comes. */
export function spawnAgentTask(args: string[]): SpawnedAgent {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["task", "--quiet", "agent", ...args],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stderr.getReader();
  const dec = new TextDecoder();
  let err = "";
  const stdout = new Response(child.stdout).text();
  return {
    child,
    stdout,
    async until(text: string): Promise<string> {
      const deadline = Date.now() + 20_000;
      while (!err.includes(text)) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const timeout = new Promise<null>((r) =>
          timer = setTimeout(() => r(null), deadline - Date.now())
        );
        const got = await Promise.race([reader.read(), timeout]);
        clearTimeout(timer);
        if (got === null || got.done) {
          throw new Error(`"${text}" did not come from the agent; it said:\n${err}`);
        }
        err += dec.decode(got.value);
      }
      return err;
    },
    async stop(): Promise<Deno.CommandStatus> {
      child.kill("SIGTERM");
      const status = await child.status;
      reader.releaseLock();
      await child.stderr.cancel();
      await stdout;
      return status;
    },
  };
}
