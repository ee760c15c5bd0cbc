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

/** Where a process spent its CPU over `ms`: self time by function, largest first. */
export async function cpuProfile(
  address: string,
  ms: number,
  top = 30,
): Promise<{ name: string; selfMs: number }[]> {
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
  const rows = new Map<string, number>();
  for (const node of profile.nodes) {
    const f = node.callFrame;
    const where = f.url ? `${f.url.replace(/^.*\/(main|deno)\//, "")}:${f.lineNumber + 1}` : "";
    const name = `${f.functionName || "(anonymous)"} ${where}`.trim();
    rows.set(name, (rows.get(name) ?? 0) + (self.get(node.id) ?? 0) / 1000);
  }
  return [...rows].map(([name, selfMs]) => ({ name, selfMs }))
    .sort((a, b) => b.selfMs - a.selfMs).slice(0, top);
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
