/**
 * `deno task bench:patterns [cluster|man|wan ...]` (root): the seed's adaptation experiments.
 * For each scenario (testbed/scenarios.ts), Patterns' runtime with the star only, with k = 1,
 * 2, ... fast-path links forced, with the full mesh (the optimum), and with automatic adaptation
 * from a cold start, with the VTTIF and VNET reaction times of the automatic run. Prints a
 * markdown table per scenario and writes bench/out/patterns.md, patterns.svg (and .png when
 * rsvg-convert or ImageMagick is installed): speedup over the star against the number of links.
 *
 * Targets (cluster): automatic adaptation at least 2x faster than the star and within 15% of
 * the full mesh; the benefit grows with the number of links.
 *
 * @module
 */

import { iterationGroups } from "../testbed/patterns_run.ts";
import { requireLab } from "./cli.ts";
import { measureModes, type ModeResult, scenarioLab, SCENARIOS } from "../testbed/scenarios.ts";
import { renderChart, type Series, svgToPng } from "./plot.ts";

/** A scenario's results as a markdown table. */
export function resultTable(results: ModeResult[]): string {
  const star = results.find((r) => r.mode === "star")!.runtimeMs;
  const mesh = results.find((r) => r.mode === "mesh")?.runtimeMs ?? NaN;
  const lines = [
    "| mode | fast paths | runtime s | speedup over star | vs full mesh |",
    "|---|---:|---:|---:|---:|",
  ];
  for (const r of results) {
    lines.push(
      `| ${r.mode} | ${r.links} | ${(r.runtimeMs / 1000).toFixed(2)} | ${
        (star / r.runtimeMs).toFixed(2)
      }x | ` +
        `${((r.runtimeMs / mesh - 1) * 100).toFixed(1)}% |`,
    );
  }
  // Where the time went: the slowest rank's iterations in groups of 30 (the automatic run pays
  // for VTTIF's learning in its first groups).
  for (const r of results.filter((r) => r.mode === "mesh" || r.mode === "auto")) {
    const groups = iterationGroups(r.outcome, 30).map((ms) => ms.toFixed(0));
    lines.push("", `${r.mode}: ms per iteration, per 30 iterations: ${groups.join(", ")}`);
  }
  const auto = results.find((r) => r.mode === "auto");
  if (auto) {
    lines.push(
      "",
      `automatic: VTTIF reaction ${
        auto.vttifMs ?? "-"
      } ms (application start -> change declared), ` +
        `VNET reaction ${auto.vnetMs ?? "-"} ms (change -> rules active on every host)`,
    );
  }
  return lines.join("\n");
}

if (import.meta.main) {
  requireLab("patterns");
  const names = Deno.args.length ? Deno.args : Object.keys(SCENARIOS);
  const sections: string[] = [];
  const series: Series[] = [];
  for (const name of names) {
    const scenario = SCENARIOS[name];
    if (!scenario) {
      console.error(
        `bench:patterns: unknown scenario "${name}"; choose from ${
          Object.keys(SCENARIOS).join(", ")
        }`,
      );
      Deno.exit(2);
    }
    console.error(`\n# ${scenario.name}: ${scenario.description}`);
    const lab = await scenarioLab(scenario);
    let results: ModeResult[];
    try {
      const ks = Array.from({ length: scenario.maxLinks - 1 }, (_, i) => i + 1);
      results = await measureModes(lab, scenario, { ks, progress: (m) => console.error(m) });
    } finally {
      await lab.close();
    }
    const run = scenario.run;
    const head = `## ${scenario.name}: ${scenario.description}\n\nPatterns ${run.topology}, ` +
      `${run.iterations} iterations, ${run.messageBytes} B messages, ${run.computeMs} ms compute` +
      (scenario.note ? `\n\nNote: ${scenario.note}.` : "");
    const section = `${head}\n\n${resultTable(results)}`;
    console.log(`\n${section}`);
    sections.push(section);
    const star = results[0].runtimeMs;
    const auto = results.find((r) => r.mode === "auto")!;
    series.push({
      name: scenario.name,
      points: results.filter((r) => r.mode !== "auto").map((r) => [r.links, star / r.runtimeMs]),
      auto: [auto.links, star / auto.runtimeMs],
    });
  }
  const out = new URL("./out/", import.meta.url);
  await Deno.mkdir(out, { recursive: true });
  await Deno.writeTextFile(new URL("patterns.md", out), sections.join("\n\n") + "\n");
  const svgPath = new URL("patterns.svg", out).pathname;
  await Deno.writeTextFile(svgPath, renderChart("Benefit of adaptation (Patterns)", series));
  const how = await svgToPng(svgPath, svgPath.replace(/\.svg$/, ".png"));
  console.log(
    `\nwrote bench/out/patterns.md, patterns.svg${
      how ? ` and patterns.png (${how})` : " (no PNG: install librsvg2-bin or imagemagick)"
    }`,
  );
}
