/**
 * The lab's one way to run a command on the machine (`ip`, `tc`, `ip netns exec ...`): the
 * output captured, and a failure thrown with the command and its stderr, so a lab that cannot
 * be built says which step failed.
 *
 * @module
 */

/** Result of a command run in a namespace. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `ip ...` (or another command) and throws with its stderr when it fails. */
export async function sh(cmd: string[], allowFail = false): Promise<RunResult> {
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const r = {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
  if (r.code !== 0 && !allowFail) {
    throw new Error(`Cannot run "${cmd.join(" ")}": exit ${r.code}: ${r.stderr.trim()}`);
  }
  return r;
}
