import { assert, assertEquals } from "../support/assert.ts";
import { Vttif } from "../../inference/vttif.ts";
import { classify } from "../../inference/classify.ts";
import type { TopologyChange } from "../../inference/change.ts";
import {
  allToAll,
  binaryTree,
  bus,
  mesh,
  type Pattern,
  prng,
  reportFor,
  ring,
  star,
  vm,
} from "../support/topologies.ts";

const DEFAULTS = { smoothingMs: 5000, threshold: 0.1, hysteresisMs: 3000 };

/** Runs `seconds` of 1-s ticks of `pattern` traffic; returns the changes declared. */
function run(
  v: Vttif,
  pattern: Pattern,
  from: number,
  seconds: number,
  vms: number,
  seed = 1,
  chatter = 6,
) {
  const random = prng(seed);
  const changes: TopologyChange[] = [];
  for (let t = from + 1; t <= from + seconds; t++) {
    v.addReport(reportFor(pattern, { vms, seconds: 1, bytesPerSec: 1e6, chatter, random }));
    // Broadcast and multicast never reach the matrix: hosts count them apart.
    const r = v.tick(t * 1000);
    if (r.change) changes.push(r.change);
  }
  return changes;
}

const cases: [string, Pattern, number, string][] = [
  ["all-to-all of 8", allToAll(8), 8, "all-to-all"],
  ["ring of 8", ring(8), 8, "ring"],
  ["bus of 8", bus(8), 8, "bus"],
  ["star of 8", star(8), 8, "star"],
  ["binary tree of 15", binaryTree(15), 15, "tree"],
  ["3x4 mesh", mesh(3, 4), 12, "mesh"],
  ["4x4 mesh", mesh(4, 4), 16, "mesh"],
  ["4x4 torus", mesh(4, 4, true), 16, "torus"],
  ["3x5 torus", mesh(3, 5, true), 15, "torus"],
];

for (const [name, pattern, n, kind] of cases) {
  Deno.test(`vttif: ${name} with noise and chatter is inferred as ${kind}, once`, () => {
    const v = new Vttif(DEFAULTS);
    v.tick(0);
    const changes = run(v, pattern, 0, 30, n);
    assertEquals(changes.length, 1, changes.map((c) => c.to.summary).join(" | "));
    const c = v.current().classification;
    assertEquals(c.kind, kind, c.summary);
    assertEquals(c.evidence.vms, n);
    assertEquals(c.evidence.edges, pattern.length);
  });
}

Deno.test("vttif: a phase change all-to-all -> ring is declared once, without flapping", () => {
  const v = new Vttif(DEFAULTS);
  v.tick(0);
  const first = run(v, allToAll(8), 0, 30, 8);
  assertEquals(first.map((c) => c.to.kind), ["all-to-all"]);
  const second = run(v, ring(8), 30, 60, 8, 2);
  assertEquals(second.map((c) => c.to.kind), ["ring"]);
  const change = second[0];
  assertEquals(change.from.kind, "all-to-all");
  assertEquals(change.removed.length, 28 - 8);
  assertEquals(change.added.length, 0);
  assert(change.detectedAt - change.firstSeenAt >= DEFAULTS.hysteresisMs);
  assert(change.detectedAt - 30_000 < 20_000, `reaction ${change.detectedAt - 30_000} ms`);
});

Deno.test("vttif: a brief burst between two quiet VMs does not change the topology", () => {
  const v = new Vttif(DEFAULTS);
  v.tick(0);
  run(v, ring(8), 0, 30, 8);
  const random = prng(9);
  const changes: TopologyChange[] = [];
  for (let t = 31; t <= 60; t++) {
    const report = reportFor(ring(8), { vms: 8, seconds: 1, bytesPerSec: 1e6, random });
    if (t === 35) report.push({ src: vm(0), dst: vm(4), bytes: 5e6, frames: 3500 }); // 1-s burst
    v.addReport(report);
    const r = v.tick(t * 1000);
    if (r.change) changes.push(r.change);
  }
  assertEquals(changes.length, 0, changes.map((c) => c.to.summary).join(" | "));
  assertEquals(v.current().classification.kind, "ring");
});

Deno.test("vttif: traffic that stops makes the topology empty after the hysteresis", () => {
  const v = new Vttif({ ...DEFAULTS, smoothingMs: 1000 });
  v.tick(0);
  run(v, bus(4), 0, 10, 4, 3, 0);
  const changes = [];
  for (let t = 11; t <= 40; t++) {
    const r = v.tick(t * 1000);
    if (r.change) changes.push(r.change);
  }
  assertEquals(changes.map((c) => c.to.kind), ["none"]);
});

Deno.test("classify: disconnected, arbitrary and near-miss grids are not misnamed", () => {
  const graph = (pattern: Pattern) => {
    const edges = pattern.map(([a, b]) => {
      const [x, y] = [vm(a), vm(b)].sort();
      return { a: x, b: y, bytesPerSec: 1, weight: 1 };
    });
    const vms = [...new Set(edges.flatMap((e) => [e.a, e.b]))].sort();
    return { vms, edges, maxBytesPerSec: 1 };
  };
  assertEquals(classify(graph([[0, 1], [2, 3]])).kind, "arbitrary");
  assertEquals(classify(graph([[0, 1], [2, 3]])).evidence.components, 2);
  // A 3x4 mesh with one edge moved keeps the counts of a mesh but is not one.
  const bent = mesh(3, 4).filter(([a, b]) => !(a === 5 && b === 6));
  bent.push([0, 11]);
  assert(classify(graph(bent)).kind !== "mesh");
  // Two disjoint 4-cycles joined into one 4-regular graph of 8 vertices is no 2x4 torus.
  const twoSquares: Pattern = [
    ...allToAll(4),
    ...allToAll(4).map(([a, b]) => [a + 4, b + 4] as [number, number]),
  ];
  assertEquals(classify(graph(twoSquares)).kind, "arbitrary");
  assertEquals(classify(graph(mesh(2, 5))).evidence.dims, [2, 5]);
});

Deno.test("vttif: the matrix is bounded; idle VMs are evicted so new ones can be counted", () => {
  const v = new Vttif({ smoothingMs: 500, threshold: 0.1, hysteresisMs: 0, maxVms: 20 });
  v.tick(0);
  const random = prng(5);
  const shifted = (pattern: Pattern, by: number): Pattern =>
    pattern.map(([a, b]) => [a + by, b + by]);
  // 16 VMs talk in a ring, then fall silent; 16 others start.
  for (let t = 1; t <= 5; t++) {
    v.addReport(reportFor(ring(16), { vms: 16, seconds: 1, bytesPerSec: 1e6, random }));
    v.tick(t * 1000);
  }
  assertEquals(v.current().classification.kind, "ring");
  for (let t = 6; t <= 40; t++) {
    v.addReport(
      reportFor(shifted(ring(16), 100), { vms: 200, seconds: 1, bytesPerSec: 1e6, random }),
    );
    v.tick(t * 1000);
  }
  assertEquals(v.current().classification.kind, "ring");
  assert(v.current().graph.vms.every((m) => m >= vm(100)), "the new VMs' ring, not the old one");
  assert(v.evicted >= 16, `idle VMs evicted: ${v.evicted}`);
  assert(v.matrix.vms.size <= 20);
});

Deno.test("classify: a torus of 40,000 VMs is recognised without running out of stack", () => {
  // The grid check places one vertex per search level: as a recursion it overflowed the call
  // stack near ten thousand VMs, and the exception ended the proxy's VTTIF tick.
  const side = 200;
  const edges = mesh(side, side, true).map(([a, b]) => ({
    a: vm(a),
    b: vm(b),
    bytesPerSec: 1,
    weight: 1,
  }));
  const vms = Array.from({ length: side * side }, (_, i) => vm(i)).sort();
  const c = classify({ vms, edges, maxBytesPerSec: 1 });
  assertEquals(c.kind, "torus", c.summary);
  assertEquals(c.evidence.dims, [side, side]);
});
