/**
 * A census of another Deno process's V8 heap, through its inspector (`--inspect=ADDR`): one
 * heap snapshot, its objects' own sizes summed by constructor. `bench:scale --heap-census`
 * uses it to say what a proxy's memory per host is made of, `bench:scale --cpu-profile` where
 * its CPU goes, and `bench:scale` to collect the proxy's garbage before it reads the RSS of
 * idle hosts.
 *
 *     ws://ADDR/<target> ──HeapProfiler.takeHeapSnapshot──> chunks ──> nodes by constructor
 *
 * @module
 */

/** Bytes and counts of one constructor's objects. */
export interface CensusRow {
  name: string;
  bytes: number;
  count: number;
}

/**
 * Takes a heap snapshot of the process whose inspector listens at `address` (host:port) and
 * returns the largest constructors by their objects' own size, largest first.
 */
export async function heapCensus(address: string, top = 25): Promise<CensusRow[]> {
  const chunks: string[] = [];
  await inspect(address, ["HeapProfiler.enable", "HeapProfiler.takeHeapSnapshot"], (m) => {
    if (m.method === "HeapProfiler.addHeapSnapshotChunk") chunks.push(m.params.chunk);
  });
  const snap = JSON.parse(chunks.join(""));
  const fields: string[] = snap.snapshot.meta.node_fields;
  const types: string[] = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const [typeAt, nameAt, sizeAt] = ["type", "name", "self_size"].map((f) => fields.indexOf(f));
  const rows = new Map<string, CensusRow>();
  const nodes: number[] = snap.nodes;
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + typeAt]];
    const name = type === "object" || type === "closure"
      ? `${snap.strings[nodes[i + nameAt]]}${type === "closure" ? " (closure)" : ""}`
      : `(${type})`;
    const r = rows.get(name) ?? { name, bytes: 0, count: 0 };
    r.bytes += nodes[i + sizeAt];
    r.count++;
    rows.set(name, r);
  }
  return [...rows.values()].sort((a, b) => b.bytes - a.bytes).slice(0, top);
}

/** Runs a full garbage collection in the process whose inspector listens at `address`. */
export async function collectGarbage(address: string): Promise<void> {
  await inspect(address, ["HeapProfiler.enable", "HeapProfiler.collectGarbage"]);
}

/** One function's share of a profile. */
export interface ProfileRow {
  name: string;
  /** Samples in the function itself. */
  selfMs: number;
  /** Samples in it or anything it called (a recursive call counted once). */
  totalMs: number;
}

/**
 * Where a process spent its CPU over `ms`: self time by function, largest first, with each
 * one's total (what a periodic task such as the re-plan costs with everything it calls).
 */
export async function cpuProfile(
  address: string,
  ms: number,
  top = 30,
): Promise<ProfileRow[]> {
  // deno-lint-ignore no-explicit-any
  let profile: any = null;
  // One session: the profiler stops with the session that started it.
  await inspect(address, ["Profiler.enable", "Profiler.start", ms, "Profiler.stop"], () => {}, (
    method,
    result,
  ) => {
    if (method === "Profiler.stop") profile = result?.profile;
  });
  if (!profile) return [];
  const self = new Map<number, number>();
  const dt: number[] = profile.timeDeltas;
  profile.samples.forEach((id: number, i: number) => self.set(id, (self.get(id) ?? 0) + dt[i]));
  // deno-lint-ignore no-explicit-any
  const byId = new Map<number, any>(profile.nodes.map((n: any) => [n.id, n]));
  const nameOf = (
    node: { callFrame: { url: string; functionName: string; lineNumber: number } },
  ) => {
    const f = node.callFrame;
    const where = f.url ? `${f.url.replace(/^.*\/(main|deno)\//, "")}:${f.lineNumber + 1}` : "";
    return `${f.functionName || "(anonymous)"} ${where}`.trim();
  };
  const rows = new Map<string, ProfileRow>();
  const row = (name: string) => {
    let r = rows.get(name);
    if (!r) rows.set(name, r = { name, selfMs: 0, totalMs: 0 });
    return r;
  };
  // A node's total is its subtree's samples; a function's, the sum over its nodes that have
  // no caller of the same name (recursion counted once).
  const totals = (node: { id: number; children?: number[] }, above: Set<string>): number => {
    const name = nameOf(byId.get(node.id));
    const own = (self.get(node.id) ?? 0) / 1000;
    row(name).selfMs += own;
    const inner = new Set(above).add(name);
    let sum = own;
    for (const c of node.children ?? []) sum += totals(byId.get(c), inner);
    if (!above.has(name)) row(name).totalMs += sum;
    return sum;
  };
  totals(profile.nodes[0], new Set());
  return [...rows.values()].sort((a, b) => b.selfMs - a.selfMs).slice(0, top);
}

/**
 * Sends `methods` in order over one session of the inspector at `address` (a number: wait
 * that many ms); events go to `onEvent`, results to `onResult`.
 */
async function inspect(
  address: string,
  methods: (string | number)[],
  // deno-lint-ignore no-explicit-any
  onEvent: (m: any) => void = () => {},
  // deno-lint-ignore no-explicit-any
  onResult: (method: string, result: any) => void = () => {},
): Promise<void> {
  const targets = await (await fetch(`http://${address}/json/list`)).json() as {
    webSocketDebuggerUrl: string;
  }[];
  if (!targets.length) throw new Error(`Cannot inspect ${address}: no target there`);
  const ws = new WebSocket(targets[0].webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error(`Cannot reach the inspector at ${address}`));
  });
  let id = 0;
  const pending = new Map<number, (result: unknown) => void>();
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m.id !== undefined) pending.get(m.id)?.(m.result);
    else onEvent(m);
  };
  for (const method of methods) {
    if (typeof method === "number") {
      await new Promise((r) => setTimeout(r, method));
      continue;
    }
    await new Promise<void>((resolve) => {
      pending.set(++id, (result) => {
        onResult(method, result);
        resolve();
      });
      ws.send(JSON.stringify({ id, method, params: {} }));
    });
  }
  const closed = new Promise((r) => ws.onclose = r);
  ws.close();
  await closed;
}
