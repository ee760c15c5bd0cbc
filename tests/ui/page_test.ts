/**
 * The live page in a real browser: an in-process overlay (proxy + four hosts on in-memory
 * devices, VMs talking all-to-all until every fast path is up), Debian's chromium driven by
 * playwright-core, and the page's graph, panel and live timeline checked against the overlay.
 * Writes tests/artifacts/page.png (all-to-all) and page-host-left.png (after a host stops).
 */
import { chromium, type Page } from "playwright-core";
import { assert, assertEquals } from "../support/assert.ts";
import { testConfig } from "../support/config.ts";
import { frame, vmMac } from "../support/frames.ts";
import { MemoryDevice } from "../../agent/device/memory_device.ts";
import { runHost } from "../../agent/host.ts";
import { formatJoinToken } from "../../agent/join/token.ts";
import { runProxy } from "../../proxy/proxy.ts";
import { BROADCAST_MAC, formatMac } from "../../agent/switch/ethernet.ts";

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = new URL("../artifacts/", import.meta.url);

const why = await (async () => {
  const hasChromium = await Deno.stat(CHROMIUM).then((s) => s.isFile, () => false);
  if (!hasChromium) return `no ${CHROMIUM}: apt-get install chromium`;
  if (Deno.uid() !== 0) return "needs root (chromium runs with --no-sandbox)";
  return null;
})();

/** Code that runs in the page goes as text, so this file type-checks without the DOM's types. */
const GRAPH_VIEW = `(() => {
  const cy = window.vnetGraph;
  const ids = (sel) => cy.$(sel).map((e) => e.id()).sort();
  const ends = (sel) =>
    cy.$(sel).map((e) => [e.data("source"), e.data("target")].sort().join(" ")).sort();
  return {
    proxy: ids("#proxy"),
    hosts: ids("node.host"),
    vms: ids("node.vm"),
    star: ends("edge.star"),
    fast: ends("edge.fast"),
    fastPhases: cy.$("edge.fast").map((e) => e.data("phase")),
    app: cy.$("edge.app").length,
    kind: document.getElementById("topology-kind").textContent,
    data: { ...document.body.dataset },
  };
})()`;

interface GraphView {
  proxy: string[];
  hosts: string[];
  vms: string[];
  star: string[];
  fast: string[];
  fastPhases: string[];
  app: number;
  kind: string;
  data: Record<string, string>;
}

/**
 * Waits until `expression`, evaluated in the page, is true. Polls from here: playwright's own
 * waitForFunction evaluates a string with eval() inside the page, which the page's CSP forbids.
 */
async function pageUntil(page: Page, expression: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await page.evaluate<boolean>(expression))) {
    if (Date.now() > end) throw new Error(`timed out waiting in the page for ${expression}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function until(cond: () => boolean, what: string, ms = 15_000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test({
  name: why
    ? `ui page: live topology in chromium (skipped: ${why})`
    : "ui page: live topology in chromium",
  ignore: why !== null,
  // playwright-core keeps pipes and timers of its own until the browser process is reaped.
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const stateDir = await Deno.makeTempDir({ prefix: "vnet-ui-" });
    const fast = { updateInterval: 100, smoothing: 300, hysteresis: 300 };
    const local = { hostname: "127.0.0.1", port: 0 };
    const proxy = await runProxy(
      testConfig({ proxy: true, stateDir, listen: local, api: local, ...fast }),
      { announceToken: () => {} },
    );
    const n = 4;
    const devs = Array.from(
      { length: n },
      (_, i) => new MemoryDevice({ name: `d${i}`, writtenCapacity: 1_000_000 }),
    );
    const hosts = await Promise.all(devs.map((d, i) =>
      runHost(
        testConfig({
          join: proxy.address,
          token: formatJoinToken(proxy.token),
          name: `h${i}`,
          listen: local,
          ...fast,
        }),
        { openDevice: () => d },
      )
    ));
    const alive = devs.map(() => true);
    let sending = true;
    let traffic: Promise<void> = Promise.resolve();
    let browser: Awaited<ReturnType<typeof chromium.launch>> | null = null;
    const stopped = new Set<number>();
    try {
      await Promise.all(hosts.map((h) => h.ready));
      devs.forEach((d, i) => d.inject(frame(BROADCAST_MAC, vmMac(i + 1))));
      traffic = (async () => {
        while (sending) {
          for (let i = 0; i < n; i++) {
            for (let j = 0; j < n; j++) {
              if (i !== j && alive[i] && alive[j]) {
                devs[i].inject(frame(vmMac(j + 1), vmMac(i + 1), 1000));
              }
            }
          }
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
      await until(
        () =>
          [...proxy.adapt.pairs.values()].filter((p) => p.phase === "up").length === 6 &&
          proxy.vttif.snapshot().classification.kind === "all-to-all",
        "six fast paths up and an all-to-all topology",
      );

      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: [
          "--headless",
          "--no-sandbox",
          "--disable-gpu",
          "--disable-quic",
          "--no-first-run",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
        ],
      });
      const page = await browser.newPage({ viewport: { width: 1400, height: 860 } });
      const problems: string[] = [];
      page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
      page.on("console", (m) => {
        if (m.type() === "error") problems.push(`console: ${m.text()}`);
      });
      page.on("response", (r) => {
        if (r.status() >= 400) problems.push(`HTTP ${r.status()} for ${r.url()}`);
      });
      // In as the operator gets in: `agent page` (the real CLI, no terminal) prints a one-time
      // link; the browser trades it for a session cookie.
      const cli = await new Deno.Command(Deno.execPath(), {
        args: [
          "task",
          "--quiet",
          "agent",
          "page",
          "--api",
          `127.0.0.1:${proxy.apiAddress.port}`,
          "--state-dir",
          stateDir,
        ],
        cwd: new URL("../../", import.meta.url).pathname,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      const said = new TextDecoder().decode(cli.stdout);
      assertEquals(cli.code, 0, new TextDecoder().decode(cli.stderr));
      const link = /(http:\/\/\S+\/login\?code=\S+)/.exec(said)?.[1];
      assert(link, said);
      const res = await page.goto(link, { waitUntil: "domcontentloaded" });
      assertEquals(res?.status(), 200);
      assertEquals(new URL(page.url()).pathname, "/", "the login redirects to the page");
      await pageUntil(
        page,
        `document.body.dataset.fastPathsUp === "6" && document.body.dataset.vms === "4"`,
        15_000,
      );

      const graph = await page.evaluate<GraphView>(GRAPH_VIEW);
      assertEquals(graph.proxy, ["proxy"]);
      assertEquals(graph.hosts, ["host:h0", "host:h1", "host:h2", "host:h3"]);
      assertEquals(graph.vms, [1, 2, 3, 4].map((i) => `vm:${formatMac(vmMac(i))}`).sort());
      assertEquals(graph.star, [
        "host:h0 proxy",
        "host:h1 proxy",
        "host:h2 proxy",
        "host:h3 proxy",
      ]);
      const pairs: string[] = [];
      for (let i = 0; i < n; i++) {
        for (let j = i + 1; j < n; j++) pairs.push(`host:h${i} host:h${j}`);
      }
      assertEquals(graph.fast, pairs, "a fast-path edge between every pair of hosts");
      assert(graph.fastPhases.every((p: string) => p === "up"), graph.fastPhases.join());
      assertEquals(graph.app, 6, "all-to-all between four VMs");
      assertEquals(graph.kind, "all-to-all");
      assertEquals(graph.data.hosts, "4");
      // The underlay as placement prices it: every host pair with the bandwidth it carried.
      // (Its RTT may be unknown: links busy both ways send no keepalives to time.)
      await pageUntil(page, `document.body.dataset.underlayPairs === "6"`);
      const underlay = await page.evaluate<string[][]>(
        `[...document.querySelectorAll("#underlay-rows tr")]
          .map((tr) => [...tr.children].map((td) => td.textContent))`,
      );
      assertEquals(
        underlay.map((r) => r[0]).sort(),
        pairs.map((p) => p.replaceAll("host:", "").replace(" ", "|")),
      );
      assert(
        underlay.every((r) =>
          /B\/s$/.test(r[1]) && (r[2] === "–") === (r[3] === "unknown") &&
          /^(fast-path|star|probe|unknown)$/.test(r[3])
        ),
        JSON.stringify(underlay),
      );
      assertEquals(graph.data.topology, "all-to-all");

      // Let a second refresh give the star edges their rates, then keep a picture.
      const refreshes = Number(graph.data.refreshes);
      await pageUntil(page, `Number(document.body.dataset.refreshes) >= ${refreshes + 2}`);
      await Deno.mkdir(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: new URL("page.png", ARTIFACTS).pathname });
      assertEquals(problems, [], "no errors in the page");

      // Live update: stop h3; its departure reaches the timeline through the event stream.
      alive[3] = false;
      stopped.add(3);
      await hosts[3].stop();
      await pageUntil(
        page,
        `[...document.querySelectorAll("#timeline li[data-type='host']")]
          .some((li) => li.textContent.includes("host h3 left"))`,
      );
      const times = await page.evaluate<number[]>(
        `[...document.querySelectorAll("#timeline time")].map((t) => Date.parse(t.dateTime))`,
      );
      assert(times.every((t, i) => i === 0 || times[i - 1] >= t), "newest first");
      await pageUntil(page, `document.body.dataset.starEdges === "3"`);
      await page.screenshot({ path: new URL("page-host-left.png", ARTIFACTS).pathname });
    } finally {
      await browser?.close();
      sending = false;
      await traffic;
      await Promise.all(hosts.filter((_, i) => !stopped.has(i)).map((h) => h.stop()));
      await proxy.stop();
      await Deno.remove(stateDir, { recursive: true });
    }
  },
});
