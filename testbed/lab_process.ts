/**
 * The processes a lab starts inside its namespaces: each one's stdout and stderr go to one log
 * file in arrival order, a test waits for a line in that log (the agent's own word that it is
 * ready), and stopping is SIGTERM with a SIGKILL after a grace period. The lab (lab.ts) keeps
 * the list and kills only what it started.
 *
 * @module
 */

/** A process the lab started, with its log file. */
export interface LabProcess {
  name: string;
  child: Deno.ChildProcess;
  logPath: string;
  status: Promise<Deno.CommandStatus>;
}

/** Starts a long-running process inside `ns`, its output going to a log file. */
export async function spawnLogged(
  dir: string,
  name: string,
  ns: string,
  cmd: string[],
): Promise<LabProcess> {
  const logPath = `${dir}/${name}.log`;
  const file = await Deno.open(logPath, { write: true, create: true, truncate: true });
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", ns, ...cmd],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Both streams into one file, in arrival order.
  const copy = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s) await file.write(chunk).catch(() => {});
  };
  const status = Promise.all([copy(child.stdout), copy(child.stderr)]).then(() => child.status)
    .finally(() => {
      try {
        file.close();
      } catch { /* closed */ }
    });
  return { name, child, logPath, status };
}

/** Waits until the process's log matches `re` (counting only matches after `skip`). */
export async function waitForLog(
  p: LabProcess,
  re: RegExp,
  timeoutMs: number,
  skip = 0,
): Promise<string> {
  const until = Date.now() + timeoutMs;
  let exited = false;
  p.status.then(() => exited = true);
  while (Date.now() < until) {
    const text = await Deno.readTextFile(p.logPath).catch(() => "");
    const matches = [
      ...text.matchAll(new RegExp(re.source, re.flags.includes("g") ? re.flags : re.flags + "g")),
    ];
    if (matches.length > skip) return matches[skip][0];
    if (exited) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const log = await Deno.readTextFile(p.logPath).catch(() => "");
  throw new Error(
    `Cannot see ${re} in ${p.name}'s log within ${timeoutMs} ms${
      exited ? " (process exited)" : ""
    }:\n${log.slice(-3000)}`,
  );
}

/** Stops one process with SIGTERM (SIGKILL after a grace period). */
export async function stopProcess(p: LabProcess, graceMs = 3000): Promise<Deno.CommandStatus> {
  try {
    p.child.kill("SIGTERM");
  } catch { /* already gone */ }
  const t = setTimeout(() => {
    try {
      p.child.kill("SIGKILL");
    } catch { /* gone */ }
  }, graceMs);
  const s = await p.status;
  clearTimeout(t);
  return s;
}
