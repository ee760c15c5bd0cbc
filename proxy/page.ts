/**
 * The operator's live page, served by the control API next to the JSON endpoints it reads:
 *
 *     GET /                            index.html (layout, panel, inline CSS)
 *     GET /app.js                      the page's script (plain browser JS modules, no build
 *     GET /model.js, /graph.js,        step): app.js imports the model, the graph and its
 *         /format.js, /constants.js    formatting and shared constants
 *     GET /vendor/cytoscape.min.js     the graph library, from the installed npm package
 *
 * Nothing is fetched from the internet: cytoscape comes from Deno's npm cache (it is a
 * dependency in deno.json, so the same `deno install` / first run that fetches the agent's
 * other npm packages fetches it). Files are read on first request and kept in memory; a failed
 * read is not cached, so a later `deno install` fixes the page without a restart.
 *
 * @module
 */

import { createRequire } from "node:module";

interface Asset {
  contentType: string;
  /** Long-lived for the versioned vendor file, revalidated for our own files. */
  cacheControl: string;
  /** Where the file is; may throw when it cannot be found. */
  locate(): string | URL;
}

const OWN = "no-cache";

/**
 * Script and data only from this origin; styles may be inline (index.html keeps its CSS there,
 * and cytoscape sets element styles).
 */
const CSP = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
  "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/** The cytoscape build that defines `window.cytoscape`, as its package exports it. */
const CYTOSCAPE = "cytoscape/dist/cytoscape.min.js";

/** The page's own script modules, each served at `/<name>` from page/. */
const SCRIPTS = ["app.js", "model.js", "graph.js", "format.js", "constants.js"];

const ASSETS: ReadonlyMap<string, Asset> = new Map([
  ["/", {
    contentType: "text/html; charset=utf-8",
    cacheControl: OWN,
    locate: () => new URL("./page/index.html", import.meta.url),
  }],
  ...SCRIPTS.map((name): [string, Asset] => [`/${name}`, {
    contentType: "text/javascript; charset=utf-8",
    cacheControl: OWN,
    locate: () => new URL(`./page/${name}`, import.meta.url),
  }]),
  ["/vendor/cytoscape.min.js", {
    contentType: "text/javascript; charset=utf-8",
    cacheControl: "max-age=3600",
    // The package exports this file only under the "require" condition, so it is resolved the
    // way Node would require it; Deno maps that onto its npm cache (or node_modules).
    locate: () => createRequire(import.meta.url).resolve(CYTOSCAPE),
  }],
]);

const cache = new Map<string, Promise<Uint8Array<ArrayBuffer>>>();

function load(path: string, asset: Asset): Promise<Uint8Array<ArrayBuffer>> {
  let body = cache.get(path);
  if (!body) {
    body = Promise.resolve().then(() => Deno.readFile(asset.locate()));
    cache.set(path, body);
    body.catch(() => cache.delete(path));
  }
  return body;
}

async function serve(path: string, asset: Asset): Promise<Response> {
  try {
    const body = await load(path, asset);
    const headers: Record<string, string> = {
      "content-type": asset.contentType,
      "cache-control": asset.cacheControl,
      "x-content-type-options": "nosniff",
    };
    if (asset.contentType.startsWith("text/html")) headers["content-security-policy"] = CSP;
    return new Response(body, { headers });
  } catch (e) {
    const hint = path.startsWith("/vendor/")
      ? " (the npm package is missing: run `deno install` in the vnet checkout)"
      : "";
    return new Response(`Cannot serve ${path}: ${(e as Error).message}${hint}\n`, {
      status: 500,
      headers: { "content-type": "text/plain; charset=utf-8" },
    });
  }
}

/**
 * Serves the live page's files: a response for `GET /`, its script modules (`/app.js` and
 * what it imports) and `/vendor/cytoscape.min.js`, null for anything else (so the API can go
 * on routing).
 *
 * @example
 * ```ts
 * import { pageHandler } from "./page.ts";
 * const res = await pageHandler(new Request("http://127.0.0.1/app.js"))!;
 * if (res.headers.get("content-type") !== "text/javascript; charset=utf-8") throw new Error();
 * await res.body?.cancel();
 * if (pageHandler(new Request("http://127.0.0.1/api/status")) !== null) throw new Error();
 * ```
 */
export function pageHandler(req: Request): Promise<Response> | null {
  if (req.method !== "GET") return null;
  const path = new URL(req.url).pathname;
  const asset = ASSETS.get(path);
  return asset ? serve(path, asset) : null;
}
