/**
 * The few assertions the tests use (JSR's @std/assert is not reachable from our machines).
 *
 * @module
 */

/** Thrown when an assertion fails. */
export class AssertionError extends Error {
  override name = "AssertionError";
}

/** Deep equality through a canonical JSON rendering (Maps and Sets as arrays). */
export function assertEquals<T>(actual: T, expected: T, msg = ""): void {
  const a = canon(actual);
  const e = canon(expected);
  if (a !== e) throw new AssertionError(`${msg ? msg + ": " : ""}expected ${e}\n      got ${a}`);
}

/** Fails when `cond` is falsy. */
export function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new AssertionError(msg);
}

/** Fails unless `fn` throws an instance of `type` whose message includes `includes`. */
export function assertThrows(
  fn: () => unknown,
  type: abstract new (...a: never[]) => Error,
  includes = "",
): Error {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof type)) throw new AssertionError(`expected ${type.name}, got ${e}`);
    if (!e.message.includes(includes)) {
      throw new AssertionError(`expected message to include "${includes}", got "${e.message}"`);
    }
    return e;
  }
  throw new AssertionError(`expected ${type.name} to be thrown`);
}

/** Async version of {@linkcode assertThrows}. */
export async function assertRejects(
  fn: () => Promise<unknown>,
  type: abstract new (...a: never[]) => Error,
  includes = "",
): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    if (!(e instanceof type)) throw new AssertionError(`expected ${type.name}, got ${e}`);
    if (!e.message.includes(includes)) {
      throw new AssertionError(`expected message to include "${includes}", got "${e.message}"`);
    }
    return e;
  }
  throw new AssertionError(`expected ${type.name} to be thrown`);
}

function canon(v: unknown): string {
  return JSON.stringify(v, (_k, x) => {
    if (x instanceof Map) return { "<Map>": [...x.entries()] };
    if (x instanceof Set) return { "<Set>": [...x.values()] };
    if (x instanceof Uint8Array) return { "<bytes>": [...x] };
    if (typeof x === "bigint") return `${x}n`;
    if (x === undefined) return "<undefined>";
    return x;
  });
}
