/**
 * `deno task compile`: builds the single binary `dist/agent` (not `./agent`: that is the source folder).
 *
 * `deno compile` needs Deno's runtime base (`denort`), which it downloads unless DENORT_BIN
 * names a local copy. Machines without internet cannot download it; then this script stops
 * with a message that says so and how to fix it, instead of Deno's DNS error.
 *
 * @module
 */

import { AGENT_RUN_FLAGS } from "../agent/run_flags.ts";

if (import.meta.main) {
  const denort = Deno.env.get("DENORT_BIN");
  if (denort && !(await Deno.stat(denort).then((s) => s.isFile, () => false))) {
    console.error(
      `compile: DENORT_BIN=${denort} does not name a file; point it at a denort binary of Deno ${Deno.version.deno}`,
    );
    Deno.exit(1);
  }
  const cmd = new Deno.Command(Deno.execPath(), {
    args: [
      "compile",
      ...AGENT_RUN_FLAGS,
      "--include",
      "deno.json",
      // The live page's files are read at run time (proxy/page.ts).
      "--include",
      "proxy/page",
      "--output",
      "dist/agent",
      "main.ts",
    ],
    stdout: "inherit",
    stderr: "piped",
  });
  const out = await cmd.output();
  const err = new TextDecoder().decode(out.stderr);
  if (out.success) {
    console.log("compile: built dist/agent");
    Deno.exit(0);
  }
  if (/dns error|download|denort|failed to lookup|error sending request/i.test(err)) {
    console.error(
      "compile: cannot build dist/agent: deno compile needs Deno's runtime base (denort), and this machine " +
        "cannot download it.\nFix: on a machine with internet run `deno compile` once (it caches denort), or set " +
        `DENORT_BIN to a local denort binary of Deno ${Deno.version.deno} (denort-x86_64-unknown-linux-gnu from Deno's ` +
        "release page) and run `deno task compile` again.\nMeanwhile `deno task agent` runs the same program.",
    );
  } else {
    console.error(err);
  }
  Deno.exit(1);
}
