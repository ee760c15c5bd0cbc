/**
 * `agent`: argv / YAML -> typed config -> runProxy() or runHost(). The only place that wires
 * the parts together and touches the process (signals, exit codes).
 *
 * @module
 */

import { COMMAND_USAGE, runCommand } from "./proxy/cli/commands.ts";
import { helpText } from "./agent/config/help.ts";
import { ConfigError, loadInvocation } from "./agent/config/load.ts";
import { openConfiguredDevice } from "./agent/device/open.ts";
import { runHost } from "./agent/host.ts";
import { logger, setupLogging } from "./agent/log.ts";
import { keepNativeMemoryLow } from "./agent/native_memory.ts";
import { runProxy } from "./proxy/proxy.ts";
import { diagnose, report } from "./agent/cli/doctor.ts";
import { configDiff, flagList } from "./agent/config/reload.ts";
import type { Config } from "./agent/config/schema.ts";
import { VERSION } from "./agent/version.ts";

/** Runs the agent with `argv`; resolves to the process exit code. */
export async function main(argv: string[]): Promise<number> {
  let inv;
  try {
    inv = await loadInvocation(argv);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`agent: ${e.message}`);
      return 2;
    }
    throw e;
  }
  if (inv.help) {
    console.log(helpText(VERSION, COMMAND_USAGE));
    return 0;
  }
  if (inv.version) {
    console.log(`agent ${VERSION} (deno ${Deno.version.deno})`);
    return 0;
  }
  if (inv.command.length === 1 && inv.command[0] === "doctor") {
    return report(await diagnose(inv.config), console.log);
  }
  if (inv.command.length > 0) return await runCommand(inv);
  const config = inv.config;
  setupLogging({ level: config.logLevel, format: config.logFormat });

  // Signals are handled from before anything starts, so a SIGTERM during start-up also
  // ends in a clean stop instead of the default kill.
  let stop: (() => Promise<void>) | null = null;
  let stopRequested = false;
  const onSignal = () => {
    if (stopRequested) return;
    stopRequested = true;
    stop?.();
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  // SIGHUP: re-read the configuration, take on what can change live, name the rest.
  let running = config;
  let reconfigure: ((next: Config) => Promise<void>) | null = null;
  const onHangup = () => reload(argv, running, reconfigure).then((c) => running = c);
  Deno.addSignalListener("SIGHUP", onHangup);
  const stopTrimming = keepNativeMemoryLow();
  try {
    let done: Promise<void>;
    let failed: () => string | null = () => null;
    try {
      if (config.proxy) {
        const proxy = await runProxy(config, { openDevice: openConfiguredDevice });
        reconfigure = proxy.reconfigure;
        stop = proxy.stop;
        done = proxy.done;
      } else {
        const host = await runHost(config, { openDevice: openConfiguredDevice });
        stop = host.stop;
        done = host.done;
        failed = host.fatal;
      }
    } catch (e) {
      console.error(`agent: ${(e as Error).message}`);
      return 1;
    }
    if (stopRequested) stop();
    await done;
    const fatal = failed();
    if (fatal) {
      console.error(`agent: ${fatal}`);
      return 1;
    }
    return 0;
  } finally {
    stopTrimming();
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    Deno.removeSignalListener("SIGHUP", onHangup);
  }
}

/**
 * One SIGHUP: the configuration re-read from the same flags and file; the logging and (on a
 * proxy) the adaptation settings applied; every other change named as needing a restart. A
 * configuration that no longer validates changes nothing. Resolves to the configuration now
 * in force.
 */
async function reload(
  argv: string[],
  running: Config,
  reconfigure: ((next: Config) => Promise<void>) | null,
): Promise<Config> {
  const log = logger("agent");
  let next: Config;
  try {
    next = (await loadInvocation(argv)).config;
  } catch (e) {
    log.error("Reload refused, nothing changed: {error}", { error: (e as Error).message });
    return running;
  }
  const { live, restart } = configDiff(running, next);
  const applied = live.filter((n) => reconfigure || n === "logLevel" || n === "logFormat");
  if (applied.includes("logLevel") || applied.includes("logFormat")) {
    setupLogging({ level: next.logLevel, format: next.logFormat });
  }
  if (reconfigure && applied.some((n) => !n.startsWith("log"))) await reconfigure(next);
  const waiting = [...restart, ...live.filter((n) => !applied.includes(n))];
  log.info("Reloaded the configuration: applied {applied}; needs a restart: {restart}", {
    applied: applied.length ? flagList(applied) : "nothing",
    restart: waiting.length ? flagList(waiting) : "nothing",
  });
  // What was not applied stays as it runs, so the next reload names it again.
  const inForce = { ...next };
  for (const n of waiting) (inForce as Record<string, unknown>)[n] = running[n];
  return inForce;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
