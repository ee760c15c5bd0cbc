/**
 * A full {@linkcode Config} for in-process tests: every setting at its documented default,
 * then the overrides.
 *
 * @module
 */

import { type Config, type SettingName, SETTINGS } from "../agent/config/schema.ts";

/** State directories made for configurations that named none, removed when the tests end. */
const madeDirs: string[] = [];
globalThis.addEventListener("unload", () => {
  for (const d of madeDirs) {
    try {
      Deno.removeSync(d, { recursive: true });
    } catch { /* gone */ }
  }
});

/**
 * The default configuration with `overrides` applied. Without a `stateDir` it gets a fresh
 * temporary one (removed at exit): a test never touches the machine's /var/lib/vnet, and two
 * hosts never share an identity.
 */
export function testConfig(overrides: Partial<Config>): Config {
  const c = {} as Record<SettingName, unknown>;
  for (const name of Object.keys(SETTINGS) as SettingName[]) c[name] = SETTINGS[name].default;
  if (overrides.stateDir === undefined) {
    const dir = Deno.makeTempDirSync({ prefix: "vnet-test-state-" });
    madeDirs.push(dir);
    c.stateDir = dir;
  }
  return { ...(c as Config), ...overrides };
}
