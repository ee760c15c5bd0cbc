/**
 * A full {@linkcode Config} for in-process tests: every setting at its documented default,
 * then the overrides.
 *
 * @module
 */

import { type Config, type SettingName, SETTINGS } from "../../agent/config/schema.ts";

/** The default configuration with `overrides` applied. */
export function testConfig(overrides: Partial<Config>): Config {
  const c = {} as Record<SettingName, unknown>;
  for (const name of Object.keys(SETTINGS) as SettingName[]) c[name] = SETTINGS[name].default;
  return { ...(c as Config), ...overrides };
}
