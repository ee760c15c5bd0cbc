/**
 * VTTIF: the Virtual Topology and Traffic Inference Framework, as pure functions. Given the
 * per-VM-pair traffic the hosts count, it infers how the application inside the VMs
 * communicates (all-to-all, ring, bus, mesh, torus, tree, star...) and when that changes.
 *
 * @module
 */

export { ChangeDetector, type TopologyChange } from "./change.ts";
export {
  type Classification,
  classify,
  type Evidence,
  gridGraph,
  type TopologyKind,
} from "./classify.ts";
export { Smoother } from "./smoothing.ts";
export {
  buildTopology,
  edgeKeys,
  EMPTY_GRAPH,
  type TopologyEdge,
  type TopologyGraph,
} from "./topology.ts";
export {
  type PairCount,
  pairKey,
  pairOf,
  type RateSample,
  TrafficMatrix,
  VmIndex,
} from "./traffic_matrix.ts";
export { type MatrixEntry, type TickResult, Vttif, type VttifOptions } from "./vttif.ts";
