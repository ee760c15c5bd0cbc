/**
 * Logging through LogTape: readable text on stderr by default, one JSON object per line with
 * `--log-format json`. Modules take a logger with {@linkcode logger}; only `main.ts` calls
 * {@linkcode setupLogging}. Secrets are never passed to a logger: tokens are named by their
 * public id, keys not at all.
 *
 * @module
 */

import {
  configureSync,
  getJsonLinesFormatter,
  getLogger,
  getTextFormatter,
  type Logger,
  type LogLevel,
  resetSync,
} from "@logtape/logtape";

const encoder = new TextEncoder();

/** A category logger under `vnet`, e.g. `logger("link")` logs as `vnet·link`. */
export function logger(...category: string[]): Logger {
  return getLogger(["vnet", ...category]);
}

/** Sends every `vnet` log record at `level` or above to stderr in the chosen format. */
export function setupLogging(options: { level: LogLevel; format: "text" | "json" }): void {
  resetSync();
  // JSON keeps the message template and the values apart, as log pipelines want them.
  const formatter = options.format === "json"
    ? getJsonLinesFormatter({ message: "template" })
    : getTextFormatter({
      timestamp: "date-time-tz",
      category: ".",
      value: (v) => typeof v === "string" ? v : Deno.inspect(v, { compact: true, depth: 4 }),
    });
  configureSync({
    // A synchronous sink: a line is on stderr before the next statement runs, so nothing is
    // lost when the process exits right after logging.
    sinks: { stderr: (record) => void Deno.stderr.writeSync(encoder.encode(formatter(record))) },
    loggers: [
      { category: ["vnet"], lowestLevel: options.level, sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}
