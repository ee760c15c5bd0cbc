import { assert, assertEquals, assertRejects, assertThrows } from "../support/assert.ts";
import { allToAll, binaryTree, bus, mesh, type Pattern, ring } from "../support/topologies.ts";
import {
  type ByteStream,
  FrameStream,
  HEADER_BYTES,
  runBsp,
  writeHeader,
} from "../../testbed/patterns/bsp.ts";
import {
  neighbours,
  squarestMesh,
  TOPOLOGIES,
  type Topology,
} from "../../testbed/patterns/topology.ts";
import { parsePatternsArgs } from "../../testbed/patterns.ts";
import { patternsArgs } from "../../testbed/patterns_run.ts";

// ---- topology ----

/** Undirected edges "a-b" (a < b) of every rank's sendTo lists. */
function edgesOf(topology: Topology, size: number): string[] {
  const out = new Set<string>();
  for (let r = 0; r < size; r++) {
    for (const s of neighbours(topology, r, size).sendTo) out.add(edge(r, s));
  }
  return [...out].sort();
}

function edge(a: number, b: number): string {
  return a < b ? `${a}-${b}` : `${b}-${a}`;
}

/** The reference pattern's edges, without the self-loops and repeats of tiny rings. */
function referenceEdges(pattern: Pattern): string[] {
  return [...new Set(pattern.filter(([a, b]) => a !== b).map(([a, b]) => edge(a, b)))].sort();
}

Deno.test("patterns topology: every send is someone's receive, lists sorted, no self, no repeats", () => {
  for (const topology of TOPOLOGIES) {
    for (let size = 1; size <= 9; size++) {
      const all = Array.from({ length: size }, (_, r) => neighbours(topology, r, size));
      all.forEach(({ sendTo, receiveFrom }, r) => {
        for (const list of [sendTo, receiveFrom]) {
          const sorted = [...new Set(list)].sort((a, b) => a - b);
          assertEquals(list, sorted, `${topology} size ${size} rank ${r}`);
          assert(!list.includes(r), `${topology} size ${size} rank ${r} lists itself`);
          assert(list.every((x) => x >= 0 && x < size), `${topology} ${size} ${r} out of range`);
        }
        for (const s of sendTo) {
          assert(all[s].receiveFrom.includes(r), `${topology} ${size}: ${r}->${s} not expected`);
        }
        for (const s of receiveFrom) {
          assert(all[s].sendTo.includes(r), `${topology} ${size}: ${s}->${r} never sent`);
        }
      });
    }
  }
});

Deno.test("patterns topology: symmetric topologies match the reference patterns", () => {
  const symmetric: [Topology, (n: number) => Pattern][] = [
    ["all-to-all", allToAll],
    ["bus", bus],
    ["ring", ring],
    ["tree", binaryTree],
    ["mesh", (n) => mesh(squarestMesh(n).rows, squarestMesh(n).cols)],
  ];
  for (const [topology, reference] of symmetric) {
    for (let size = 1; size <= 9; size++) {
      for (let r = 0; r < size; r++) {
        const n = neighbours(topology, r, size);
        assertEquals(n.sendTo, n.receiveFrom, `${topology} size ${size} rank ${r}`);
      }
      assertEquals(
        edgesOf(topology, size),
        referenceEdges(reference(size)),
        `${topology} size ${size}`,
      );
    }
  }
});

Deno.test("patterns topology: small rings, mesh shapes, stars around rank 0", () => {
  assertEquals(neighbours("ring", 0, 1), { sendTo: [], receiveFrom: [] });
  assertEquals(neighbours("ring", 0, 2), { sendTo: [1], receiveFrom: [1] });
  assertEquals(neighbours("ring", 1, 2), { sendTo: [0], receiveFrom: [0] });
  assertEquals(neighbours("ring", 0, 3).sendTo, [1, 2]);

  assertEquals(squarestMesh(9), { rows: 3, cols: 3 });
  assertEquals(squarestMesh(8), { rows: 2, cols: 4 });
  assertEquals(squarestMesh(7), { rows: 1, cols: 7 });
  assertEquals(neighbours("mesh", 4, 9).sendTo, [1, 3, 5, 7]);
  assertEquals(neighbours("mesh", 0, 6, { mesh: { rows: 3, cols: 2 } }).sendTo, [1, 2]);
  assertThrows(() => neighbours("mesh", 0, 6, { mesh: { rows: 4, cols: 2 } }), RangeError, "4x2");

  assertEquals(neighbours("tree", 1, 9).sendTo, [0, 3, 4]);
  assertEquals(neighbours("tree", 4, 9).sendTo, [1]);

  for (let size = 1; size <= 9; size++) {
    const others = Array.from({ length: size - 1 }, (_, i) => i + 1);
    assertEquals(neighbours("reduction", 0, size), { sendTo: [], receiveFrom: others });
    assertEquals(neighbours("broadcast", 0, size), { sendTo: others, receiveFrom: [] });
    for (const r of others) {
      assertEquals(neighbours("reduction", r, size), { sendTo: [0], receiveFrom: [] });
      assertEquals(neighbours("broadcast", r, size), { sendTo: [], receiveFrom: [0] });
    }
  }
  assertThrows(() => neighbours("ring", 4, 4), RangeError, "rank 4");
  assertThrows(() => neighbours("ring", 0, 0), RangeError, "size");
});

// ---- framing ----

/** A stream that yields `bytes` in `chunk`-sized reads, then end of stream. */
function fakeStream(bytes: Uint8Array, chunk: number): ByteStream {
  let at = 0;
  return {
    read(p) {
      if (at === bytes.length) return Promise.resolve(null);
      const n = Math.min(p.length, chunk, bytes.length - at);
      p.set(bytes.subarray(at, at + n));
      at += n;
      return Promise.resolve(n);
    },
    write: (p) => Promise.resolve(p.length),
  };
}

function frames(...fs: { iteration: number; length: number }[]): Uint8Array {
  const out = new Uint8Array(fs.reduce((n, f) => n + HEADER_BYTES + f.length, 0));
  let at = 0;
  for (const f of fs) {
    writeHeader(out.subarray(at), f);
    at += HEADER_BYTES + f.length;
  }
  return out;
}

Deno.test("patterns framing: frames of the expected iteration and length pass in any split", async () => {
  const bytes = frames(
    { iteration: 0, length: 100_000 },
    { iteration: 1, length: 0 },
    { iteration: 2, length: 3 },
  );
  for (const chunk of [1, 7, 4096, 1 << 20]) {
    const s = new FrameStream(fakeStream(bytes, chunk), { peer: "rank 1" });
    await s.expect(0, 100_000);
    await s.expect(1, 0);
    await s.expect(2, 3);
    await assertRejects(() => s.expect(3, 3), Error, "connection closed after 0 of 8 bytes");
  }
});

Deno.test("patterns framing: a wrong iteration, a wrong length or a cut frame fails loudly", async () => {
  const wrongIteration = new FrameStream(fakeStream(frames({ iteration: 4, length: 10 }), 64), {
    peer: "rank 2",
  });
  await assertRejects(
    () => wrongIteration.expect(3, 10),
    Error,
    "Cannot receive from rank 2: expected iteration 3, got 4",
  );
  const wrongLength = new FrameStream(fakeStream(frames({ iteration: 0, length: 10 }), 64), {
    peer: "rank 2",
  });
  await assertRejects(() => wrongLength.expect(0, 11), Error, "expected a 11-byte message");
  const cut = new FrameStream(
    fakeStream(frames({ iteration: 0, length: 10 }).subarray(0, 12), 64),
    { peer: "rank 2" },
  );
  await assertRejects(() => cut.expect(0, 10), Error, "connection closed after 4 of 10 bytes");
});

Deno.test("patterns bsp: a stranger on the port fails the rank, which stops retrying", async () => {
  const [mine, absent] = freePorts(2);
  // Rank 1 does not listen yet, so rank 0 is still retrying its connection when the stranger
  // comes. Once the run has failed, the retry loop must be gone: rank 1's port stays quiet.
  const run = runBsp({
    rank: 0,
    hosts: ["127.0.0.1", "127.0.0.1"],
    ports: [mine, absent],
    listenHostname: "127.0.0.1",
    topology: "ring",
    messageBytes: 1,
    computeMs: 0,
    iterations: 1,
  });
  const stranger = await Deno.connect({ hostname: "127.0.0.1", port: mine });
  try {
    await stranger.write(new TextEncoder().encode("GET / HTTP/1.0\r\n\r\n"));
    await assertRejects(() => run, Error, "not an awaited Patterns peer");
  } finally {
    stranger.close();
  }
  const late = Deno.listen({ hostname: "127.0.0.1", port: absent });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const quiet = new Promise<"quiet">((r) => timer = setTimeout(() => r("quiet"), 500));
  const accepted = late.accept().then((c) => (c.close(), "connected" as const), () => "closed");
  try {
    assertEquals(await Promise.race([quiet, accepted]), "quiet");
  } finally {
    clearTimeout(timer);
    late.close();
    await accepted;
  }
});

// ---- flags ----

const BASE = [
  "--rank",
  "1",
  "--hosts",
  "10.0.0.1,10.0.0.2,10.0.0.3,10.0.0.4",
  "--topology",
  "mesh",
  "--message-bytes",
  "1000",
  "--compute-ms",
  "2.5",
  "--iterations",
  "3",
];

Deno.test("patterns flags: parsed, defaulted, and a bad value names its flag", () => {
  const { run, timeoutS } = parsePatternsArgs([...BASE, "--mesh", "1x4", "--timeout-s", "9"]);
  assertEquals(run, {
    rank: 1,
    hosts: ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"],
    ports: [7900, 7900, 7900, 7900],
    topology: "mesh",
    mesh: { rows: 1, cols: 4 },
    messageBytes: 1000,
    computeMs: 2.5,
    iterations: 3,
  });
  assertEquals(timeoutS, 9);
  assertEquals(parsePatternsArgs([...BASE, "--ports", "1,2,3,4"]).run.ports, [1, 2, 3, 4]);
  assertEquals(parsePatternsArgs([...BASE, "--port", "8000"]).run.ports[3], 8000);

  const bad: [string[], string][] = [
    [BASE.slice(2), "--rank is required"],
    [[...BASE, "--rank", "4"], "--rank"],
    [[...BASE, "--iterations", "0"], "--iterations"],
    [[...BASE, "--message-bytes", "1e3"], "--message-bytes"],
    [[...BASE, "--compute-ms", "-1"], "--compute-ms"],
    [[...BASE, "--topology", "star"], "--topology"],
    [[...BASE, "--ports", "1,2,3"], "3 ports for 4 hosts"],
    [[...BASE, "--port", "1", "--ports", "1,2,3,4"], "not both"],
    [[...BASE, "--mesh", "3x2"], "--mesh"],
    [[...BASE, "--hosts", "a,,b"], "--hosts"],
  ];
  for (const [args, message] of bad) assertThrows(() => parsePatternsArgs(args), Error, message);
});

// ---- real processes on loopback ----

/** Ports free right now: all held open at once so that they differ, then released. */
function freePorts(n: number): number[] {
  const listeners = Array.from(
    { length: n },
    () => Deno.listen({ hostname: "127.0.0.1", port: 0 }),
  );
  const ports = listeners.map((l) => l.addr.port);
  for (const l of listeners) l.close();
  return ports;
}

interface RankRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs one Patterns process per rank on 127.0.0.1; every process is dead when this returns. */
async function runRanks(size: number, args: (rank: number) => string[]): Promise<RankRun[]> {
  const ports = freePorts(size).join(",");
  const hosts = Array(size).fill("127.0.0.1").join(",");
  const children = Array.from({ length: size }, (_, rank) =>
    new Deno.Command(Deno.execPath(), {
      args: [
        ...patternsArgs(rank, hosts),
        "--ports",
        ports,
        ...args(rank),
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn());
  try {
    const outs = await Promise.all(children.map((c) => c.output()));
    return outs.map((o) => ({
      code: o.code,
      stdout: new TextDecoder().decode(o.stdout),
      stderr: new TextDecoder().decode(o.stderr),
    }));
  } finally {
    for (const c of children) {
      try {
        c.kill("SIGKILL");
      } catch { /* already exited */ }
    }
  }
}

Deno.test("patterns processes: 4 ranks finish every topology with the expected byte counts", async () => {
  const iterations = 3;
  const messageBytes = 1000;
  const computeMs = 5;
  // Topologies run one after another: 24 processes at once would crowd a small CI machine.
  const topologies: Topology[] = ["all-to-all", "ring", "mesh", "tree", "reduction", "broadcast"];
  for (const topology of topologies) {
    const runs = await runRanks(4, () => [
      "--topology",
      topology,
      "--message-bytes",
      String(messageBytes),
      "--compute-ms",
      String(computeMs),
      "--iterations",
      String(iterations),
      "--timeout-s",
      "20",
    ]);
    runs.forEach((run, rank) => {
      const where = `${topology} rank ${rank}`;
      assertEquals(run.code, 0, `${where} exit code (stderr: ${run.stderr})`);
      const lines = run.stdout.trim().split("\n");
      assertEquals(lines.length, 1, `${where} prints one line`);
      const r = JSON.parse(lines[0]);
      const { sendTo, receiveFrom } = neighbours(topology, rank, 4);
      assertEquals(
        [r.rank, r.topology, r.size, r.iterations, r.messageBytes, r.computeMs],
        [rank, topology, 4, iterations, messageBytes, computeMs],
        where,
      );
      assertEquals(r.bytesSent, iterations * sendTo.length * messageBytes, `${where} sent`);
      assertEquals(
        r.bytesReceived,
        iterations * receiveFrom.length * messageBytes,
        `${where} received`,
      );
      assertEquals(r.iterationMs.length, iterations, where);
      assert(r.iterationMs.every((ms: number) => ms >= computeMs), `${where}: ${r.iterationMs}`);
      assert(r.totalMs >= iterations * computeMs, `${where}: totalMs ${r.totalMs}`);
    });
  }
});

Deno.test("patterns processes: a rank whose peer never starts times out with exit 1", async () => {
  const [port, absent] = freePorts(2);
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      ...patternsArgs(0, "127.0.0.1,127.0.0.1"),
      // Rank 1's port is free and nobody listens there.
      "--ports",
      `${port},${absent}`,
      "--topology",
      "ring",
      "--message-bytes",
      "10",
      "--compute-ms",
      "0",
      "--iterations",
      "1",
      "--timeout-s",
      "0.3",
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assertEquals(out.code, 1, stderr);
  assertEquals(out.stdout.length, 0);
  assert(stderr.includes("timed out after 0.3 s"), stderr);
  assert(stderr.includes("still connecting to rank 1"), stderr);
});

Deno.test("patterns processes: ranks that disagree on the message size both fail loudly", async () => {
  const runs = await runRanks(2, (rank) => [
    "--topology",
    "ring",
    "--message-bytes",
    String(100 + rank),
    "--compute-ms",
    "0",
    "--iterations",
    "2",
    "--timeout-s",
    "20",
  ]);
  for (const run of runs) {
    assertEquals(run.code, 1, run.stderr);
    assert(run.stderr.includes("-byte message in iteration 0"), run.stderr);
  }
});
