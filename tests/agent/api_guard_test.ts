/**
 * The API bound to every address cannot list the names it is reached by: the CLI, which
 * sends the bearer token, may name any Host there; a request without it may not.
 */
import { assertEquals } from "../support/assert.ts";
import { ApiGuard } from "../../agent/api_guard.ts";

Deno.test("api guard: on a wildcard bind the bearer token may come with any Host", () => {
  const g = new ApiGuard("t0ken");
  g.listensOn("0.0.0.0", 7801);
  const remote = (headers: Record<string, string>) =>
    g.check(new Request("http://10.0.0.9:7801/api/status", { headers }), 0);
  assertEquals(remote({ authorization: "Bearer t0ken" }), null);
  assertEquals(remote({})?.status, 403, "no token: the Host is still checked");
  assertEquals(remote({ authorization: "Bearer nope" })?.status, 403);
  // On a specific address nothing changes: the Host must be that address.
  const local = new ApiGuard("t0ken");
  local.listensOn("10.0.0.1", 7801);
  assertEquals(
    local.check(
      new Request("http://10.0.0.9:7801/api/status", {
        headers: { authorization: "Bearer t0ken" },
      }),
      0,
    )?.status,
    403,
  );
});
