/**
 * Throwaway network namespaces for root-only tests: every namespace and interface name is
 * random and prefixed `vnt-ffi-`/`vf`, so parallel runs and leftovers of a crashed run never
 * collide, and a test only ever gives addresses inside namespaces it made.
 *
 * @module
 */

/** True when the tests may create namespaces and devices. */
export const IS_ROOT = Deno.uid() === 0;

/** Suffix for the names of root-only tests when they are skipped. */
export const ROOT_ONLY = IS_ROOT ? "" : " [skipped: needs root]";

/**
 * Random hex: test files may run in parallel in one process (same pid, separate module
 * instances), so neither the pid nor a counter alone tells their names apart.
 */
function randomHex(bytes: number): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)))
    .map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** A fresh interface name `vf<tag><8 hex>` (at most 15 bytes). */
export function uniqueIfName(tag: string): string {
  return `vf${tag.slice(0, 5)}${randomHex(4)}`;
}

/**
 * Runs a command to completion and returns its stdout.
 *
 * @throws {Error} naming the command, its exit code and stderr when it fails.
 */
export async function run(argv: string[]): Promise<string> {
  const out = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  if (!out.success) {
    throw new Error(
      `Cannot run ${argv.join(" ")}: exit ${out.code}: ${text.decode(out.stderr).trim()}`,
    );
  }
  return text.decode(out.stdout);
}

/** A network namespace that exists until {@linkcode Netns.destroy} (or `await using`). */
export class Netns {
  readonly name: string;

  private constructor(name: string) {
    this.name = name;
  }

  /** Creates `vnt-ffi-<tag>-<random>` with its loopback up. */
  static async create(tag: string): Promise<Netns> {
    const ns = new Netns(`vnt-ffi-${tag}-${randomHex(4)}`);
    await run(["ip", "netns", "add", ns.name]);
    try {
      await ns.ip("link", "set", "lo", "up");
    } catch (e) {
      await ns.destroy();
      throw e;
    }
    return ns;
  }

  /** `ip -n <ns> ...`. */
  ip(...args: string[]): Promise<string> {
    return run(["ip", "-n", this.name, ...args]);
  }

  /** `ip netns exec <ns> ...`, to completion. */
  exec(...argv: string[]): Promise<string> {
    return run(["ip", "netns", "exec", this.name, ...argv]);
  }

  /** Starts `argv` inside the namespace without waiting; stdout and stderr are piped. */
  spawn(...argv: string[]): Deno.ChildProcess {
    return new Deno.Command("ip", {
      args: ["netns", "exec", this.name, ...argv],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  }

  /** Creates a veth pair inside the namespace, both ends up; returns their names. */
  async vethPair(): Promise<[string, string]> {
    const [a, b] = [uniqueIfName("a"), uniqueIfName("b")];
    await this.ip("link", "add", a, "type", "veth", "peer", "name", b);
    await this.ip("link", "set", a, "up");
    await this.ip("link", "set", b, "up");
    return [a, b];
  }

  /** Runs a probe script (Deno, FFI allowed) inside the namespace; returns its JSON report. */
  // deno-lint-ignore no-explicit-any
  async probe(script: string, ...args: string[]): Promise<any> {
    const out = await this.exec(
      Deno.execPath(),
      "run",
      "--allow-ffi",
      "--allow-env=VNET_LIBPCAP",
      script,
      ...args,
    );
    return JSON.parse(out);
  }

  /** Moves an interface of the current namespace into this one. */
  async adopt(ifName: string): Promise<void> {
    await run(["ip", "link", "set", ifName, "netns", this.name]);
  }

  /** Interface counters inside the namespace. */
  async counters(ifName: string): Promise<{ rxPackets: number; txPackets: number }> {
    const [link] = JSON.parse(await this.ip("-s", "-j", "link", "show", "dev", ifName));
    return { rxPackets: link.stats64.rx.packets, txPackets: link.stats64.tx.packets };
  }

  /** Deletes the namespace (and every virtual interface left in it). Never throws. */
  async destroy(): Promise<void> {
    try {
      await run(["ip", "netns", "del", this.name]);
    } catch (e) {
      console.error(`warning: ${(e as Error).message}`);
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.destroy();
  }
}
