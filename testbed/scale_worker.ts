/**
 * A worker process of `bench:scale`: one {@linkcode HostFleet} of hosts joined to a real proxy
 * process over TLS, driven by the bench through one JSON command per line on stdin; each
 * command is answered by one JSON line on stdout (`{"error": ...}` when it failed).
 *
 *     bench ──{"cmd":"join"}──> worker ──runHost x N (TLS)──> proxy process
 *           <──{"ms":...}────┘
 *
 * Commands: join, claim {knownVms, overMs}, ring {on, everyMs, ringVms?}, broadcast {host}, arp {host, target},
 * received (frames the devices got since the last call), health {keepaliveMs},
 * memory (this worker's RSS), stop (then the process exits).
 *
 *     usage: deno run --allow-all testbed/scale_worker.ts '{"proxy": "127.0.0.1:7800", ...}'
 *
 * @module
 */

import { systemClock } from "../agent/clock.ts";
import { parseAddress } from "../agent/config/types.ts";
import { tlsTransport } from "../agent/link/transport.ts";
import { HostFleet } from "./scale_fleet.ts";

/** What the bench passes as the one argument. */
export interface WorkerArgs {
  proxy: string;
  token: string;
  firstHost: number;
  hosts: number;
  vmsPerHost: number;
  totalVms: number;
  /** Host i listens for fast paths on 127.0.0.1:(listenBase + i). */
  listenBase: number;
  stateRoot: string;
  /** Host settings the proxy does not hand out (e.g. keepalive), as config keys. */
  config?: Record<string, unknown>;
}

/** One command from the bench. */
type Command =
  | { cmd: "join" | "received" | "memory" | "stop" }
  | { cmd: "claim"; knownVms: number; overMs: number }
  | { cmd: "ring"; on: boolean; everyMs: number; ringVms?: number }
  | { cmd: "broadcast"; host: number }
  | { cmd: "arp"; host: number; target: number }
  | { cmd: "health"; keepaliveMs: number };

if (import.meta.main) {
  const args = JSON.parse(Deno.args[0]) as WorkerArgs;
  // Deno's node:tls (CA discovery's dial) rejects a promise of its own when a socket is
  // destroyed with a write pending (ECANCELED), which would end the process: under a join
  // storm discoveries time out, so here such rejections are counted instead (see `health`).
  let unhandled = 0;
  globalThis.addEventListener("unhandledrejection", (e) => {
    unhandled++;
    e.preventDefault();
  });
  const fleet = new HostFleet({
    proxy: parseAddress(args.proxy),
    token: args.token,
    firstHost: args.firstHost,
    hosts: args.hosts,
    vmsPerHost: args.vmsPerHost,
    transport: () => tlsTransport,
    clock: systemClock,
    listen: (i) => ({ hostname: "127.0.0.1", port: args.listenBase + i }),
    stateRoot: args.stateRoot,
    config: args.config,
  });
  const out = (o: unknown) => console.log(JSON.stringify(o));
  const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).values();
  let buffered = "";
  for await (const chunk of lines) {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const c = JSON.parse(buffered.slice(0, nl)) as Command;
      buffered = buffered.slice(nl + 1);
      try {
        switch (c.cmd) {
          case "join":
            out(await fleet.join());
            break;
          case "claim":
            fleet.claim(c.knownVms, c.overMs);
            out({ ok: true });
            break;
          case "ring":
            fleet.ring(c.on, c.ringVms ?? args.totalVms, c.everyMs);
            out({ ok: true });
            break;
          case "broadcast":
            fleet.broadcast(c.host - args.firstHost);
            out({ ok: true });
            break;
          case "arp":
            fleet.arpFor(c.host - args.firstHost, c.target);
            out({ ok: true });
            break;
          case "received":
            out({ received: fleet.received });
            fleet.received = 0;
            break;
          case "health":
            out({ ...fleet.health(c.keepaliveMs), unhandled });
            break;
          case "memory":
            out({ rss: Deno.memoryUsage().rss });
            break;
          case "stop": {
            // Hosts that are rejoining stop within their handshake timeout; never wait longer.
            const stopped = await Promise.race([
              fleet.stop().then(() => true),
              new Promise<false>((r) => setTimeout(() => r(false), 10_000)),
            ]);
            out({ ok: stopped });
            Deno.exit(0);
          }
        }
      } catch (e) {
        out({ error: String((e as Error).stack ?? e) });
      }
    }
  }
}
