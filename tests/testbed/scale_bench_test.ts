/**
 * `deno task bench:scale` as an operator runs it (a subprocess, no terminal), at 10 hosts: the
 * harness that measures the scale targets must keep working, and what it reports that is not
 * a timing must hold at any size: every host joins, no established host misses a keepalive,
 * a broadcast reaches the other N-1 hosts once each, an ARP for a known address is one frame,
 * every API path answers, nobody reconnects.
 */
import { assert, assertEquals } from "../support/assert.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** The rows of the markdown table whose header row starts with `| variant | hosts | <first>`. */
function table(out: string, first: string): Record<string, string>[] {
  const lines = out.split("\n");
  const at = lines.findIndex((l) => l.startsWith(`| variant | hosts | ${first}`));
  assert(at >= 0, `no table starting with ${first}:\n${out}`);
  const cells = (l: string) => l.split("|").slice(1, -1).map((c) => c.trim());
  const head = cells(lines[at]);
  const rows: Record<string, string>[] = [];
  for (const l of lines.slice(at + 2)) {
    if (!l.startsWith("|")) break;
    rows.push(Object.fromEntries(cells(l).map((c, i) => [head[i], c])));
  }
  return rows;
}

Deno.test("bench:scale: ten hosts over TLS against a real proxy process, as the task runs", async () => {
  const r = await new Deno.Command("deno", {
    args: [
      "task",
      "bench:scale",
      "--hosts",
      "10",
      "--variants",
      "tls",
      "--workers",
      "1",
      "--vttif-vms",
      "64",
      "--idle-seconds",
      "1",
      "--report-seconds",
      "1",
    ],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const out = new TextDecoder().decode(r.stdout);
  assertEquals(r.code, 0, new TextDecoder().decode(r.stderr).slice(-2000));
  const [row] = table(out, "join storm s");
  assertEquals(row.variant, "tls (proxy process)");
  assert(
    Number.parseFloat(row["join storm s (proxy CPU; hosts' CPU; connections refused, by reason)"]) >
      0,
  );
  const missed = Object.entries(row).find(([k]) => k.startsWith("established hosts missing"))!;
  assert(missed[1].startsWith("0 / 2 "), `no established host missed a keepalive: ${missed[1]}`);
  assertEquals(row["frames per broadcast"], "9");
  assertEquals(row["ARP for a known address: frames (unknown address)"], "1 (9)");
  assertEquals(row.reconnects, "0");
  const [api] = table(out, "/api/status ms");
  for (const [path, cell] of Object.entries(api)) {
    if (path === "variant" || path === "hosts") continue;
    assert(/^\d+(\.\d+)? \(/.test(cell), `${path} answered: ${cell}`);
  }
});
