/**
 * `agent --help`, generated from the settings table so that every option is explained.
 *
 * @module
 */

import { keyOf, type Setting, type SettingName, SETTINGS } from "./schema.ts";

const GROUPS: Setting<unknown>["group"][] = [
  "mode",
  "attach",
  "trust",
  "data plane",
  "vttif",
  "adaptation",
  "operator",
  "logging",
];

/**
 * A duration as people write it: `250ms`, `1s`, `5m`, `1h`, `2d`.
 *
 * @example
 * ```ts
 * import { formatDuration } from "./help.ts";
 * const shown = [250, 1000, 1500, 300_000, 86_400_000].map(formatDuration).join(" ");
 * if (shown !== "250ms 1s 1.5s 5m 1d") throw new Error(shown);
 * ```
 */
export function formatDuration(ms: number): string {
  for (
    const [unit, size] of [["d", 86_400_000], ["h", 3_600_000], ["m", 60_000], ["s", 1000]] as const
  ) {
    if (ms >= size && (ms % size === 0 || (unit === "s" && ms % 100 === 0))) {
      return `${ms / size}${unit}`;
    }
  }
  return `${ms}ms`;
}

/** Defaults that are not plain values, said in words. */
const DEFAULT_WORDS: Partial<Record<SettingName, string>> = {
  tokenTtl: "0: never expires",
  fastPaths: "auto",
  tap: "vnet0 on hosts; the proxy attaches nothing without --tap or --pcap",
};

function formatDefault(name: SettingName, s: Setting<unknown>): string {
  const words = DEFAULT_WORDS[name];
  if (words) return ` (default ${words})`;
  const d = s.default;
  if (d === null || d === false) return "";
  if (typeof d === "object") return ` (default ${JSON.stringify(d)})`;
  if (s.kind.expects.startsWith("a duration")) return ` (default ${formatDuration(Number(d))})`;
  return ` (default ${d})`;
}

/**
 * The full help text; `commandUsage` lists the commands that talk to a running proxy (they
 * live with the proxy's API, in proxy/cli/, and main.ts passes their usage in).
 */
export function helpText(version: string, commandUsage: string): string {
  const lines = [
    `agent ${version}: an adaptive virtual Ethernet for VMs on foreign networks (VNET + VTTIF)`,
    "",
    "Usage:",
    "  agent --proxy [--listen ADDR:PORT] [--state-dir DIR] [--tap NAME [--bridge BR] | --pcap IFACE]",
    "  agent --join PROXY:PORT --token-file FILE [--name NAME] [--tap NAME [--bridge BR] | --pcap IFACE]",
    "  agent --config FILE.yaml        settings from a YAML file (keys as below, without --); flags win",
    "  agent --help | --version",
    "",
    "Commands (talk to the running proxy's API, --api ADDR:PORT; --json for scripts):",
    `  ${commandUsage}`,
    "",
  ];
  const names = Object.keys(SETTINGS) as SettingName[];
  for (const group of GROUPS) {
    const inGroup = names.filter((n) => SETTINGS[n].group === group);
    if (inGroup.length === 0) continue;
    lines.push(`${group[0].toUpperCase()}${group.slice(1)}:`);
    for (const n of inGroup) {
      const s = SETTINGS[n] as Setting<unknown>;
      const flag = `--${keyOf(n)}${s.kind.isSwitch ? "" : ` ${s.meta ?? "VALUE"}`}`;
      lines.push(`  ${flag.padEnd(28)} ${s.doc}${formatDefault(n, s)}`);
    }
    lines.push("");
  }
  lines.push(
    "Other:",
    `  ${
      "--config FILE".padEnd(28)
    } Read settings from a YAML file; unknown keys and bad values are refused.`,
    `  ${"--help".padEnd(28)} Show this help.`,
    `  ${"--version".padEnd(28)} Print the version.`,
    "",
    "Durations take ms, s, m or h (e.g. 250ms, 2s). Signals: SIGINT/SIGTERM stop cleanly.",
  );
  return lines.join("\n");
}
