/**
 * `agent --help`, generated from the settings table so that every option is explained.
 *
 * @module
 */

import { COMMAND_USAGE } from "../cli/commands.ts";
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

function formatDefault(s: Setting<unknown>): string {
  const d = s.default;
  if (d === null || d === false) return "";
  if (typeof d === "object") return ` (default ${JSON.stringify(d)})`;
  if (s.kind.expects.startsWith("a duration")) return ` (default ${d}ms)`;
  return ` (default ${d})`;
}

/** The full help text. */
export function helpText(version: string): string {
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
    `  ${COMMAND_USAGE}`,
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
      lines.push(`  ${flag.padEnd(28)} ${s.doc}${formatDefault(s)}`);
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
