import { assert, assertEquals } from "../support/assert.ts";
import { renderMetrics } from "../../proxy/metrics.ts";
import { VttifService } from "../../proxy/vttif_service.ts";
import { AdaptLoop } from "../../adapt/loop.ts";
import { Switch } from "../../agent/switch/switch.ts";
import { EMPTY_GRAPH } from "../../inference/mod.ts";
import type { MetricsContext } from "../../proxy/metrics.ts";

/** A proxy's metrics context: three hosts that each sent one broadcast, RTTs 1, 2 and 9 ms. */
function context(): MetricsContext {
  const sw = new Switch({ role: "proxy", maxMacs: 100, macAgeMs: 60_000, moveQuietMs: 0 });
  const rtt: Record<string, number> = { h1: 1, h2: 2, h3: 9 };
  const links = new Map<string, unknown>();
  for (const [i, h] of ["h1", "h2", "h3"].entries()) {
    sw.attach({ name: `host:${h}`, kind: "host", send: () => true });
    const frame = new Uint8Array(10 + 60);
    frame.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, i + 1], 10);
    sw.forward(frame, `host:${h}`, Date.now());
    links.set(h, { peer: h, stats: () => ({ rttMs: rtt[h], frameDrops: i }) });
  }
  const vttif = new VttifService({
    updateIntervalMs: 1000,
    smoothingMs: 5000,
    threshold: 0.1,
    hysteresisMs: 3000,
    maxPairs: 100,
  });
  const adapt = new AdaptLoop({
    hosts: () => new Map(),
    listenAddress: () => null,
    keyOf: () => null,
    vmHosts: () => new Map(),
    topology: () => EMPTY_GRAPH,
  }, { enabled: true, budget: null, pins: [], forbids: [], keepMargin: 0.5 });
  return { switch: sw, hosts: () => links, vttif, adapt } as unknown as MetricsContext;
}

const sample = (text: string, line: string) => text.split("\n").includes(line);

Deno.test("metrics: per host by default; summed and as quantiles without per-host series", () => {
  const ctx = context();
  const full = renderMetrics(ctx);
  assert(sample(full, 'vnet_port_rx_frames_total{port="host:h2"} 1'), full);
  assert(sample(full, 'vnet_link_rtt_seconds{host="h3"} 0.009'), full);
  assert(sample(full, 'vnet_link_queue_drops_total{host="h3"} 2'), full);

  const summed = renderMetrics(ctx, false);
  assert(!summed.includes('port="host:'), "no host port series");
  assert(!summed.includes('host="'), "no host link series");
  assert(sample(summed, 'vnet_port_rx_frames_total{port="hosts"} 3'), summed);
  const tx = /vnet_port_tx_frames_total\{port="hosts"\} (\d+)/.exec(summed)?.[1];
  const perHostTx = [...full.matchAll(/vnet_port_tx_frames_total\{port="host:h\d"\} (\d+)/g)]
    .reduce((n, m) => n + Number(m[1]), 0);
  assertEquals(Number(tx), perHostTx, "the sum of the hosts' series");
  assert(sample(summed, 'vnet_link_rtt_seconds{quantile="0.5"} 0.002'), summed);
  assert(sample(summed, 'vnet_link_rtt_seconds{quantile="1"} 0.009'), summed);
  assert(sample(summed, "vnet_link_queue_drops_total 3"), summed);
  assertEquals(
    summed.split("\n").filter((l) => l.startsWith("vnet_hosts ")),
    ["vnet_hosts 3"],
  );
});
