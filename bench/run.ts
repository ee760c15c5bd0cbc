/**
 * `deno task bench [NAME...]`: runs the named benchmarks one after another (never two labs at
 * once), or all of them. Each prints its own table with its baseline from the same run.
 *
 * @module
 */

/** Benchmarks by name, in the order `all` runs them. */
export const BENCHES: Record<string, string> = {
  ffi: "ffi_bench.ts",
  dataplane: "dataplane_bench.ts",
  inference: "inference_bench.ts",
  vttif: "vttif_bench.ts",
  patterns: "patterns_bench.ts",
  migration: "migration_bench.ts",
  "adapt-migration": "adapt_migration_bench.ts",
};

if (import.meta.main) {
  const names = Deno.args.filter((a) => !a.startsWith("--"));
  const passThrough = Deno.args.filter((a) => a.startsWith("--"));
  const chosen = names.length ? names : Object.keys(BENCHES);
  for (const name of chosen) {
    if (!BENCHES[name]) {
      console.error(
        `bench: unknown benchmark "${name}"; choose from ${Object.keys(BENCHES).join(", ")}`,
      );
      Deno.exit(2);
    }
  }
  let failed = 0;
  for (const name of chosen) {
    console.log(`\n## ${name}\n`);
    const script = new URL(BENCHES[name], import.meta.url).pathname;
    const status = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", script, ...passThrough],
      stdout: "inherit",
      stderr: "inherit",
    }).spawn().status;
    if (!status.success) failed++;
  }
  Deno.exit(failed ? 1 : 0);
}
