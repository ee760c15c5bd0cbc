/**
 * The inferred topology as GraphViz DOT: VMs as nodes, edges weighted by traffic (pen width
 * and label), the class and its evidence as the graph's label.
 *
 * @module
 */

import type { TopologySnapshot } from "./vttif_service.ts";
import { formatRate } from "../agent/rate.ts";

function quote(s: string): string {
  return `"${s.replace(/"/g, '\\"')}"`;
}

/**
 * Renders a snapshot's topology graph.
 *
 * @example
 * ```ts
 * import { toDot } from "./topology_format.ts";
 * const dot = toDot({
 *   classification: { kind: "bus", summary: "bus: 2 VMs", evidence: { vms: 2, edges: 1, components: 1, degrees: { 1: 2 } } },
 *   graph: { vms: ["a", "b"], edges: [{ a: "a", b: "b", bytesPerSec: 2e6, weight: 1 }], maxBytesPerSec: 2e6 },
 * });
 * if (!dot.includes('"a" -- "b"')) throw new Error(dot);
 * ```
 */
export function toDot(snap: Pick<TopologySnapshot, "classification" | "graph">): string {
  const lines = [
    "graph vttif {",
    `  label=${quote(snap.classification.summary)};`,
    "  node [shape=box, fontname=monospace];",
  ];
  for (const vm of snap.graph.vms) lines.push(`  ${quote(vm)};`);
  for (const e of snap.graph.edges) {
    const width = (1 + 4 * e.weight).toFixed(1);
    lines.push(
      `  ${quote(e.a)} -- ${quote(e.b)} [penwidth=${width}, label=${
        quote(formatRate(e.bytesPerSec))
      }];`,
    );
  }
  lines.push("}");
  return lines.join("\n") + "\n";
}
