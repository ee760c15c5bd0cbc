/**
 * A stand-in for the proxy's control API that answers the CLI with canned replies
 * (api_replies.ts) and records what it was asked, so CLI tests check the words printed and the
 * requests sent without a proxy.
 *
 * @module
 */

import type { Invocation } from "../../../agent/config/load.ts";
import { testConfig } from "../../support/config.ts";
import * as R from "./api_replies.ts";

/** One request the CLI made. */
export interface Asked {
  method: string;
  /** Path and query. */
  path: string;
  body: unknown;
  authorization: string | null;
}

const ROUTES: Record<string, (body: unknown) => Response> = {
  "GET /api/topology": () => Response.json(R.TOPOLOGY),
  "GET /api/topology?format=dot": () => new Response(R.TOPOLOGY_DOT),
  "GET /api/adapt": () => Response.json(R.ADAPT),
  "PUT /api/adapt": () => Response.json(R.ADAPT),
  "GET /api/events": () => Response.json(R.EVENTS),
  "GET /api/paths": () => Response.json(R.PATHS),
  "GET /api/links": () => Response.json(R.LINKS),
  "POST /api/login": () => Response.json(R.LOGIN),
  "GET /api/hosts": () => Response.json(R.HOSTS),
  "POST /api/hosts/revoke": (body) =>
    (body as { name: string }).name === "h1"
      ? Response.json(R.REVOKED)
      : Response.json({ error: "Cannot revoke: no such host" }, { status: 404 }),
  "GET /api/rules": () => Response.json(R.RULES),
  "POST /api/rules": () =>
    Response.json({ added: R.RULES.hosts.h1[0], on: "h1", delivered: true }, { status: 201 }),
  "DELETE /api/rules?src=*&dst=02%3A00%3A00%3A00%3A00%3A02": () =>
    Response.json({ error: "Cannot remove rule: no such rule on the proxy" }, { status: 404 }),
};

/**
 * A fake API on loopback with a token in its state dir; `close()` when done. `vms` and
 * `status`: what it pages (`?offset&limit`), R.VMS and R.STATUS unless given.
 */
export async function fakeApi(
  { vms = R.VMS, status = R.STATUS }: { vms?: readonly unknown[]; status?: typeof R.STATUS } = {},
): Promise<{
  asked: Asked[];
  invocation(command: string[], flags?: { json?: boolean; dot?: boolean }): Invocation;
  close(): Promise<void>;
}> {
  const asked: Asked[] = [];
  const stateDir = await Deno.makeTempDir({ prefix: "vnet-cli-" });
  await Deno.writeTextFile(`${stateDir}/api.token`, "tok\n");
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    const text = await req.text();
    const path = url.pathname + url.search;
    const body = text ? JSON.parse(text) : undefined;
    asked.push({
      method: req.method,
      path,
      body,
      authorization: req.headers.get("authorization"),
    });
    const offset = Number(url.searchParams.get("offset") ?? 0);
    const limit = Number(url.searchParams.get("limit") ?? Infinity);
    if (req.method === "GET" && url.pathname === "/api/vms") {
      return Response.json(vms.slice(offset, offset + limit));
    }
    if (req.method === "GET" && url.pathname === "/api/status") {
      if (!status.hosts) return Response.json(status); // a host's status
      const hosts = status.hosts.slice(offset, offset + limit);
      const ports = Object.fromEntries(hosts.map((h) => [h.port, status.ports[h.port]]));
      return Response.json({ ...status, hosts, ports });
    }
    const route = ROUTES[`${req.method} ${path}`];
    return route ? route(body) : new Response("not json", { status: 500 });
  });
  return {
    asked,
    invocation: (command, flags = {}) => ({
      config: testConfig({
        stateDir,
        api: { hostname: "127.0.0.1", port: server.addr.port },
      }),
      command,
      help: false,
      version: false,
      json: flags.json ?? false,
      dot: flags.dot ?? false,
      configFile: null,
    }),
    close: async () => {
      await server.shutdown();
      await Deno.remove(stateDir, { recursive: true });
    },
  };
}
