/**
 * `agent`: argv / YAML -> typed config -> runProxy() or runHost(). The only place that wires
 * the parts together and touches the process (signals, exit codes).
 *
 * @module
 */

import { runCommand } from "./agent/cli/commands.ts";
import { helpText } from "./agent/config/help.ts";
import { ConfigError, loadInvocation } from "./agent/config/load.ts";
import { openConfiguredDevice } from "./agent/device/open.ts";
import { runHost } from "./agent/host.ts";
import { setupLogging } from "./agent/log.ts";
import { keepNativeMemoryLow } from "./agent/native_memory.ts";
import { runProxy } from "./proxy/proxy.ts";
import { diagnose, report } from "./agent/cli/doctor.ts";
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
    console.log(helpText(VERSION));
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
  const stopTrimming = keepNativeMemoryLow();
  try {
    let done: Promise<void>;
    let failed: () => string | null = () => null;
    try {
      if (config.proxy) {
        const proxy = await runProxy(config, { openDevice: openConfiguredDevice });
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
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
