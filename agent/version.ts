/**
 * This build's version, from deno.json, so that `--version`, the API and the hello agree.
 *
 * @module
 */

import denoJson from "../deno.json" with { type: "json" };

/** The agent's version. */
export const VERSION: string = denoJson.version;
