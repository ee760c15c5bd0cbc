/**
 * Host mode (`agent --join PROXY:PORT`): attaches to the VMs' network, keeps the uplink to
 * the proxy up (reconnecting with exponential backoff and jitter), and switches frames
 * between the device and its links.
 *
 *     device ──pumpDevice──> Switch(host) ──> uplink "proxy" (star) or a fast-path "peer:NAME"
 *     uplink/peers ──Link.run──> Switch(host) ──> device
 *
 * Everything is built from one validated {@linkcode Config}; the device comes from an
 * injected factory so that tests run whole hosts on in-memory devices.
 *
 * @module
 */

import type { Config } from "./config/schema.ts";
import { formatAddress } from "./config/types.ts";
import type { Device } from "./device/device.ts";
import { pumpDevice } from "./device/pump.ts";
import { CaMismatch, discoverCa } from "./join/discovery.ts";
import { generateHostKey } from "./join/host_key.ts";
import { joinProxy, JoinRefused, RejoinRefused } from "./join/join.ts";
import { parseJoinToken } from "./join/token.ts";
import { Link } from "./link/link.ts";
import { applyRules } from "./control/apply.ts";
import { FastPathManager } from "./fastpath/manager.ts";
import { serveHostApi } from "./host_api.ts";
import { parseProxyMessage } from "./control/messages.ts";
import { logger } from "./log.ts";
import { Switch } from "./switch/switch.ts";
import { parseMac } from "./switch/ethernet.ts";
import { MAX_COUNTED_PAIRS, TrafficCounter } from "./traffic/counter.ts";

/** What a running host exposes to its owner (main.ts, tests, the status endpoint). */
export interface HostHandle {
  readonly name: string;
  readonly switch: Switch;
  readonly device: Device;
  /** The current uplink, or null while (re)connecting. */
  uplink(): Link | null;
  /** Fast-path links of this host. */
  readonly fastPaths: FastPathManager;
  /** Where the host's status endpoint listens, when `--api` was given. */
  readonly apiAddress: Deno.NetAddr | null;
  /** Number of successful joins so far (1 after the first, +1 per reconnect). */
  joins(): number;
  /** Resolves once the first uplink is established. */
  ready: Promise<void>;
  /** Stops everything: links closed with a goodbye, device closed. */
  stop(): Promise<void>;
  /** Resolves when the host has stopped (after stop(), or a fatal error such as a refused token). */
  done: Promise<void>;
  /** Why the host stopped by itself (e.g. the proxy refused its token), or null. */
  fatal(): string | null;
}

/** Injected edges. */
export interface HostDeps {
  openDevice(config: Config): Device;
  readTextFile?(path: string): Promise<string>;
}

/** Exponential backoff with full jitter, capped: attempt 0 -> up to 200 ms. */
export function backoffMs(attempt: number, capMs: number, random = Math.random): number {
  const ceiling = Math.min(capMs, 200 * 2 ** Math.min(attempt, 20));
  return Math.round(ceiling / 2 + random() * ceiling / 2);
}

/** The machine's host name made into a valid overlay name. */
export function defaultHostName(): string {
  const raw = Deno.hostname().toLowerCase().replace(/[^a-z0-9-]/g, "-").replace(/^-+|-+$/g, "");
  return raw.slice(0, 63) || "host";
}

/** Starts a host; rejects only for errors found before anything runs (bad token file...). */
export async function runHost(config: Config, deps: HostDeps): Promise<HostHandle> {
  const log = logger("host");
  const proxyAddr = config.join!;
  const name = config.name ?? defaultHostName();
  const tokenText = config.token ??
    (await (deps.readTextFile ?? Deno.readTextFile)(config.tokenFile!)).trim();
  const token = parseJoinToken(tokenText);
  const key = await generateHostKey();

  const sw = new Switch({
    role: "host",
    maxMacs: config.maxMacs,
    macAgeMs: config.macAge,
    moveQuietMs: config.moveQuiet,
  });
  const device = deps.openDevice(config);
  sw.attach({ name: "device", kind: "device", send: (p) => device.write(p) });
  const traffic = new TrafficCounter({ maxPairs: MAX_COUNTED_PAIRS });
  sw.observer = traffic;

  const stopper = new AbortController();
  const signal = stopper.signal;
  let uplink: Link | null = null;
  const fastPaths = new FastPathManager(
    { sw, self: name, config, signal },
    (msg) => (uplink as Link | null)?.sendControl(msg),
  );
  let joins = 0;
  let fatal: string | null = null;
  let markReady!: () => void;
  const ready = new Promise<void>((r) => markReady = r);

  const linkLoop = async () => {
    let caPem: string | null = null;
    // Once admitted, the host comes back with its own credential, not the join token.
    let rejoinSecret: Uint8Array | null = null;
    for (let attempt = 0; !signal.aborted;) {
      try {
        const ca: string = caPem ??
          await discoverCa(proxyAddr, token.caHash, { timeoutMs: config.handshakeTimeout, signal });
        caPem = ca;
        const { handshake, welcome } = await joinProxy(proxyAddr, {
          token,
          rejoinSecret,
          caPem: ca,
          hello: { name, offload: device.offload },
          spkiB64: key.spkiB64,
          timeoutMs: config.handshakeTimeout,
        });
        if (welcome.rejoin) {
          rejoinSecret = Uint8Array.fromBase64(welcome.rejoin, { alphabet: "base64url" });
        }
        // The proxy decides how often hosts report, so that all reports share one clock.
        const interval = welcome.settings.updateIntervalMs;
        reportEveryMs = typeof interval === "number" && interval >= 50 && interval <= 3_600_000
          ? interval
          : config.updateInterval;
        const link = new Link(
          {
            name: "proxy",
            kind: "uplink",
            peer: "proxy",
            conn: handshake.conn,
            reader: handshake.reader,
          },
          {
            onFrame: (packet) => sw.forward(packet, "proxy", Date.now()),
            onControl: (raw) => {
              try {
                const msg = parseProxyMessage(raw);
                switch (msg.type) {
                  case "rule-add":
                  case "rule-del":
                  case "rules-set": {
                    const what = applyRules(sw, msg);
                    log.info("Proxy asked: {what}", { what });
                    if (msg.type === "rules-set") {
                      link.sendControl({ type: "rules-applied", owner: msg.owner, seq: msg.seq });
                    }
                    break;
                  }
                  case "mac-moved":
                    // The VM migrated away: its frames may now arrive from links.
                    if (sw.macs.get(parseMac(msg.mac))?.port === "device") {
                      sw.macs.forget(parseMac(msg.mac));
                    }
                    log.info("VM {mac} moved to {to}", { mac: msg.mac, to: msg.to });
                    break;
                  case "peer-expect":
                  case "peer-connect":
                  case "peer-close":
                    fastPaths.handle(msg);
                    break;
                }
              } catch (e) {
                // A bad instruction is refused alone; the uplink stays.
                log.warn("Ignored a control message from the proxy: {error}", {
                  error: (e as Error).message,
                });
              }
            },
          },
          {
            queueBytes: config.queueBytes,
            keepaliveMs: config.keepalive,
            deadAfterMs: config.deadAfter,
          },
        );
        uplink = link;
        sw.attach(link);
        joins++;
        // Fast paths: listen with the certificate just issued, say where, re-announce links.
        try {
          const address = fastPaths.listen({
            certPem: welcome.certificatePem,
            keyPem: key.keyPem,
            caPem: ca,
          });
          link.sendControl({ type: "listening", address });
          fastPaths.reannounce();
        } catch (e) {
          log.warn("Cannot accept fast-path links (staying on the star): {error}", {
            error: (e as Error).message,
          });
        }
        attempt = 0;
        log.info("Joined proxy {proxy} as {name}", { proxy: formatAddress(proxyAddr), name });
        markReady();
        await link.run(signal);
        sw.detach("proxy");
        uplink = null;
        if (!signal.aborted) {
          log.warn("Lost proxy link: {reason}; reconnecting", { reason: link.closeReason });
        }
      } catch (e) {
        if (e instanceof RejoinRefused) {
          log.warn("{error}; joining with the token instead", { error: e.message });
          rejoinSecret = null;
          continue;
        }
        if (e instanceof JoinRefused || e instanceof CaMismatch) {
          fatal = e.message;
          log.error("{error}", { error: e.message });
          stopper.abort();
          break;
        }
        if (signal.aborted) break;
        const wait = backoffMs(attempt++, config.reconnectMax);
        log.warn("Cannot reach proxy {proxy}: {error}; retrying in {ms} ms", {
          proxy: formatAddress(proxyAddr),
          error: (e as Error).message,
          ms: wait,
        });
        await sleep(wait, signal);
      }
    }
  };

  // Traffic reports: counts since the last report that reached the proxy. While the uplink
  // is down they keep accumulating (bounded by the counter) and leave with the next report.
  let reportEveryMs = config.updateInterval;
  const reports = (async () => {
    let last = Date.now();
    while (!signal.aborted) {
      await sleep(reportEveryMs, signal);
      const link = uplink as Link | null; // set by the link loop
      if (signal.aborted || !link) continue;
      const now = Date.now();
      link.sendControl(traffic.report(now - last));
      last = now;
    }
  })();

  const apiServer = config.api
    ? serveHostApi({ name, switch: sw, uplink: () => uplink, fastPaths }, config.api, signal)
    : null;

  const pump = pumpDevice(device, sw, { signal });
  const links = linkLoop();
  const done = Promise.all([pump, links, reports, apiServer?.finished]).then(() => {
    device.close();
  });
  return {
    name,
    switch: sw,
    device,
    fastPaths,
    apiAddress: apiServer ? apiServer.addr as Deno.NetAddr : null,
    uplink: () => uplink,
    joins: () => joins,
    ready,
    stop: async () => {
      stopper.abort();
      await done;
    },
    done,
    fatal: () => fatal,
  };
}

/** Sleeps `ms` or until `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
