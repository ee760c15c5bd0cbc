/**
 * One iperf3 TCP transfer between two lab namespaces, as every test and benchmark runs it:
 * a one-shot server, the client started once the server listens (not after a guessed sleep),
 * and a result that is either measured or an error saying why. A failed run never reads as
 * "0.00 Gbit/s".
 *
 * @module
 */

import type { Lab } from "./lab.ts";

/** What the receiving side counted. */
export interface IperfResult {
  bitsPerSecond: number;
  /** Bytes received. */
  bytes: number;
  /** TCP retransmissions the sender saw. */
  retransmits: number;
}

/** Where and how long. */
export interface IperfOptions {
  fromNs: string;
  toNs: string;
  toIp: string;
  seconds: number;
  /** Parallel streams (`-P`); 1 by default. */
  streams?: number;
  /** Server port; 5201 by default. */
  port?: number;
}

/** The measured result of an iperf3 client's JSON output; throws with iperf3's reason. */
export function parseIperf(json: string, what: string): IperfResult {
  let r;
  try {
    r = JSON.parse(json);
  } catch {
    throw new Error(`Cannot measure ${what}: iperf3 printed no JSON: ${json.slice(-300)}`);
  }
  if (r.error) throw new Error(`Cannot measure ${what}: iperf3 says: ${r.error}`);
  const rx = r.end?.sum_received;
  if (!(rx?.bytes > 0) || !(rx?.bits_per_second > 0)) {
    throw new Error(`Cannot measure ${what}: iperf3 received nothing`);
  }
  return {
    bitsPerSecond: rx.bits_per_second,
    bytes: rx.bytes,
    retransmits: r.end?.sum_sent?.retransmits ?? 0,
  };
}

/** Runs one transfer; resolves to what arrived, or throws naming what failed. */
export async function iperf(lab: Lab, o: IperfOptions): Promise<IperfResult> {
  const port = String(o.port ?? 5201);
  const what = `iperf3 ${o.fromNs} -> ${o.toIp}:${port}`;
  const server = lab.exec(o.toNs, [
    "timeout",
    String(o.seconds + 30),
    "iperf3",
    "-s",
    "-1",
    "-p",
    port,
  ]);
  try {
    await lab.waitListening(o.toNs, Number(port), 10_000);
  } catch (e) {
    const s = await server;
    throw new Error(`Cannot measure ${what}: ${(e as Error).message}; server: ${s.stderr}`);
  }
  const c = await lab.exec(o.fromNs, [
    "timeout",
    String(o.seconds + 20),
    "iperf3",
    "-J",
    "-c",
    o.toIp,
    "-p",
    port,
    "-t",
    String(o.seconds),
    "-P",
    String(o.streams ?? 1),
  ]);
  await server;
  if (c.code !== 0 && !c.stdout.includes('"error"')) {
    throw new Error(`Cannot measure ${what}: the client exited ${c.code}: ${c.stderr.trim()}`);
  }
  return parseIperf(c.stdout, what);
}
