/** The live page's files: routes, content types, and the API's bearer check in front of them. */
import { assert, assertEquals } from "../support/assert.ts";
import { pageHandler } from "../../proxy/page.ts";
import { type ApiContext, apiHandler } from "../../proxy/api.ts";
import { ApiGuard } from "../../agent/api_guard.ts";

const BASE = "http://127.0.0.1:7801";

Deno.test("page: serves the page, its script and the vendored cytoscape with their types", async () => {
  const expected: [string, string, string][] = [
    ["/", "text/html; charset=utf-8", "/app.js"],
    ["/app.js", "text/javascript; charset=utf-8", "vnetGraph"],
    ["/vendor/cytoscape.min.js", "text/javascript; charset=utf-8", "cytoscape"],
  ];
  for (const [path, type, contains] of expected) {
    const res = await pageHandler(new Request(BASE + path));
    assert(res !== null, path);
    assertEquals(res.status, 200, path);
    assertEquals(res.headers.get("content-type"), type, path);
    assert((await res.text()).includes(contains), `${path} contains ${contains}`);
  }
  const html = await pageHandler(new Request(BASE + "/"))!;
  assert(html.headers.get("content-security-policy")?.includes("default-src 'self'"));
  await html.body?.cancel();
});

Deno.test("page: every module the page's script imports is served", async () => {
  const pending = ["/app.js"];
  const served = new Set<string>();
  while (pending.length) {
    const path = pending.pop()!;
    if (served.has(path)) continue;
    const res = await pageHandler(new Request(BASE + path));
    assert(res !== null, `${path} is served`);
    assertEquals(res.status, 200, path);
    served.add(path);
    const text = await res.text();
    for (const m of text.matchAll(/^\s*(?:import|}) .*from "\.\/([a-z_]+\.js)";$/gm)) {
      pending.push(`/${m[1]}`);
    }
  }
  assertEquals(
    [...served].sort(),
    ["/app.js", "/constants.js", "/format.js", "/graph.js", "/model.js"],
  );
});

Deno.test("page: anything else is left to the API", () => {
  assertEquals(pageHandler(new Request(BASE + "/api/status")), null);
  assertEquals(pageHandler(new Request(BASE + "/index.html.bak")), null);
  assertEquals(pageHandler(new Request(BASE + "/", { method: "POST", body: "x" })), null);
});

Deno.test("page: behind the API, the credential guards the page too", async () => {
  // The guard runs before anything reads the context.
  const guard = new ApiGuard("secret");
  guard.listensOn("127.0.0.1", 7801);
  const handler = apiHandler({} as ApiContext, guard);
  const refused = await handler(new Request(BASE + "/"));
  assertEquals(refused.status, 401);
  await refused.body?.cancel();
  const served = await handler(
    new Request(BASE + "/", { headers: { authorization: "Bearer secret" } }),
  );
  assertEquals(served.status, 200);
  assertEquals(served.headers.get("content-type"), "text/html; charset=utf-8");
  await served.body?.cancel();
  const missing = await handler(
    new Request(BASE + "/nope", { headers: { authorization: "Bearer secret" } }),
  );
  assertEquals(missing.status, 404);
  await missing.body?.cancel();
});
