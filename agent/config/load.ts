/**
 * argv + optional YAML file -> one validated {@linkcode Config}, or a {@linkcode ConfigError}
 * that names the file or flag, the key, and what was expected. Nothing starts before the
 * whole configuration is valid, and no bad value is ever replaced by a default.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { parseDocument } from "yaml";
import { type Config, keyOf, type SettingName, SETTINGS } from "./schema.ts";
import { ValueError } from "./types.ts";

/** The configuration is invalid; the message says where, what, and what is expected. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** What the command line asks for. */
export interface Invocation {
  /** The validated settings. */
  config: Config;
  /** Subcommand words (e.g. `["status"]`), empty when running a daemon. */
  command: string[];
  /** `--help` was given. */
  help: boolean;
  /** `--version` was given. */
  version: boolean;
  /** `--json` was given (subcommands print JSON). */
  json: boolean;
  /** `--dot` was given (topology as GraphViz). */
  dot: boolean;
  /** The YAML file read, if any. */
  configFile: string | null;
}

const NAMES = Object.keys(SETTINGS) as SettingName[];
const BY_KEY = new Map(NAMES.map((n) => [keyOf(n), n]));

/** Closest known key to `key`, for "did you mean" hints. */
/** Flags of the command line that are not settings (so not config-file keys). */
const COMMAND_LINE_ONLY = ["config", "help", "version", "json", "dot"];

function closest(key: string, candidates: Iterable<string> = BY_KEY.keys()): string | null {
  let best: string | null = null;
  let bestD = 3;
  for (const k of candidates) {
    const d = editDistance(key, k);
    if (d < bestD) [best, bestD] = [k, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length];
}

function unknownKey(where: string, key: string): ConfigError {
  const hint = closest(key);
  return new ConfigError(
    `${where}: unknown key "${key}"` + (hint ? ` (did you mean "${hint}"?)` : "") +
      "; see agent --help for every setting",
  );
}

/**
 * Parses the YAML text of a config file into raw setting values.
 *
 * @throws {ConfigError} for YAML syntax errors, a non-mapping document or unknown keys.
 */
export function parseConfigFile(
  path: string,
  yamlText: string,
): Partial<Record<SettingName, unknown>> {
  let doc: unknown;
  try {
    const parsed = parseDocument(yamlText, { uniqueKeys: true, logLevel: "silent" });
    // Warnings (e.g. an unknown !tag) mean the file does not say what its author thinks.
    const problem = parsed.errors[0] ?? parsed.warnings[0];
    if (problem) throw problem;
    doc = parsed.toJS({ maxAliasCount: 10 });
  } catch (e) {
    const msg = (e instanceof Error ? e.message : String(e)).split("\n")[0];
    throw new ConfigError(`config file ${path}: not valid YAML: ${msg}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== "object" || Array.isArray(doc)) {
    throw new ConfigError(
      `config file ${path}: expected a mapping of settings (key: value) at the top`,
    );
  }
  const out: Partial<Record<SettingName, unknown>> = {};
  for (const [key, value] of Object.entries(doc as Record<string, unknown>)) {
    const name = BY_KEY.get(key);
    if (!name) throw unknownKey(`config file ${path}`, key);
    out[name] = value;
  }
  return out;
}

function validate(
  raw: Partial<Record<SettingName, unknown>>,
  where: (n: SettingName) => string,
): Config {
  const config = {} as Record<SettingName, unknown>;
  for (const name of NAMES) {
    const s = SETTINGS[name];
    if (!(name in raw) || raw[name] === undefined) {
      config[name] = s.default;
      continue;
    }
    try {
      config[name] = s.kind.parse(raw[name]);
    } catch (e) {
      if (e instanceof ValueError) throw new ConfigError(`${where(name)}: ${e.message}`);
      throw e;
    }
  }
  return config as Config;
}

/** Cross-setting rules: a combination that cannot work is refused with the fix. */
function checkCombination(c: Config, command: string[]): void {
  if (command.length > 0) return; // subcommands talk to a running proxy
  if (c.proxy && c.join) {
    throw new ConfigError(
      "--proxy and --join exclude each other: a process is either the proxy or a host",
    );
  }
  if (!c.proxy && !c.join) {
    throw new ConfigError(
      "nothing to run: give --proxy (on the user's LAN) or --join HOST:PORT (on a host); see agent --help",
    );
  }
  if (c.tap && c.pcap) {
    throw new ConfigError(
      "--tap and --pcap exclude each other: attach through a new TAP device or an existing interface, not both",
    );
  }
  if (c.bridge && c.pcap) {
    throw new ConfigError(
      "--bridge goes with --tap: with --pcap the captured interface is already on its network",
    );
  }
  if (c.join) {
    if (c.token && c.tokenFile) {
      throw new ConfigError(
        "--token and --token-file exclude each other: give the join token once",
      );
    }
    if (!c.token && !c.tokenFile) {
      throw new ConfigError(
        "--join needs the proxy's join token: give --token-file FILE (or --token TOKEN)",
      );
    }
  }
}

/**
 * Reads argv (and the YAML file it names with `--config`) into an {@linkcode Invocation}.
 *
 * @example
 * ```ts
 * import { loadInvocation } from "./load.ts";
 * const inv = await loadInvocation(["--proxy", "--listen", ":7900", "--mtu", "9000"]);
 * if (!inv.config.proxy || inv.config.listen?.port !== 7900 || inv.config.mtu !== 9000) {
 *   throw new Error("flags");
 * }
 * ```
 */
export async function loadInvocation(
  argv: string[],
  options: { readTextFile?: (path: string) => Promise<string> } = {},
): Promise<Invocation> {
  const { rest, switches } = separateSwitches(argv);
  const parsed = parseFlags(rest);
  const values = parsed.values as Record<string, string | boolean | undefined>;
  for (const [key, v] of switches) values[key] = v;
  const configFile = typeof values.config === "string" ? values.config : null;
  let raw: Partial<Record<SettingName, unknown>> = {};
  let fromFile = new Set<SettingName>();
  if (configFile) {
    raw = parseConfigFile(configFile, await readConfigText(configFile, options.readTextFile));
    fromFile = new Set(Object.keys(raw) as SettingName[]);
  }
  // Flags win over the file.
  for (const name of NAMES) {
    const v = values[keyOf(name)];
    if (v !== undefined) {
      raw[name] = v;
      fromFile.delete(name);
    }
  }
  const config = validate(
    raw,
    (n) => fromFile.has(n) ? `config file ${configFile}: key "${keyOf(n)}"` : `flag --${keyOf(n)}`,
  );
  const command = parsed.positionals;
  const help = values.help === true;
  const version = values.version === true;
  if (!help && !version) checkCombination(config, command);
  return {
    config,
    command,
    help,
    version,
    json: values.json === true,
    dot: values.dot === true,
    configFile,
  };
}

/**
 * Takes the on/off settings out of `argv` (`--adapt` alone means true; `--no-adapt` and
 * `--adapt=false` say false), and joins a flag with a value that starts with "-" (which would
 * read as a flag) so that the setting's own check can say what is expected.
 */
function separateSwitches(argv: string[]): { rest: string[]; switches: Map<string, boolean> } {
  const switches = new Map<string, boolean>();
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const flag = /^--([a-z-]+)$/.exec(arg)?.[1];
    const next = argv[i + 1];
    if (
      flag && next !== undefined && /^-\d/.test(next) && BY_KEY.has(flag) &&
      !SETTINGS[BY_KEY.get(flag)!].kind.isSwitch
    ) {
      rest.push(`--${flag}=${next}`);
      i++;
      continue;
    }
    const m = /^--(no-)?([a-z-]+)(?:=(.*))?$/.exec(arg);
    const name = m ? BY_KEY.get(m[2]) : undefined;
    if (m && name && SETTINGS[name].kind.isSwitch && (m[1] || m[3] !== undefined)) {
      if (m[1] && m[3] !== undefined) {
        throw new ConfigError(`flag ${arg}: --no-${m[2]} takes no value`);
      }
      switches.set(m[2], m[1] ? false : (m[3] as unknown) as boolean);
      continue;
    }
    rest.push(arg);
  }
  return { rest, switches };
}

/** Parses the flags against the schema; an unknown flag is named, with the closest known one. */
function parseFlags(args: string[]) {
  const flagOptions: Record<string, { type: "string" | "boolean" }> = {
    config: { type: "string" },
    help: { type: "boolean" },
    version: { type: "boolean" },
    json: { type: "boolean" },
    dot: { type: "boolean" },
  };
  for (const name of NAMES) {
    flagOptions[keyOf(name)] = { type: SETTINGS[name].kind.isSwitch ? "boolean" : "string" };
  }
  try {
    return parseArgs({ args, options: flagOptions, allowPositionals: true, strict: true });
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    const m = /Unknown option '--?([^']+)'/.exec(msg);
    if (m) {
      const hint = closest(m[1], [...BY_KEY.keys(), ...COMMAND_LINE_ONLY]);
      throw new ConfigError(
        `command line: unknown flag --${m[1]}` + (hint ? ` (did you mean --${hint}?)` : "") +
          "; see agent --help for every flag",
      );
    }
    throw new ConfigError(`command line: ${msg.split(".")[0]}; see agent --help`);
  }
}

/** The text of the `--config` file, or an error that names the path. */
async function readConfigText(
  path: string,
  read: (path: string) => Promise<string> = Deno.readTextFile,
): Promise<string> {
  try {
    return await read(path);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound ? "no such file" : (e as Error).message;
    throw new ConfigError(`config file ${path}: cannot read it (${why}); check the --config path`);
  }
}
