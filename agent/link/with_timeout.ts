/**
 * A promise with a deadline, for the dials (transport.ts, node_tls_conn.ts): each stage of
 * connecting gets its own bound.
 *
 * @module
 */

/**
 * `p`, or the error `timedOut()` makes once `ms` passed; a result that comes too late is
 * handed to `onLate` (to close it).
 */
export function withTimeout<T>(
  p: Promise<T>,
  ms: number,
  timedOut: () => Error,
  onLate?: (v: T) => void,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let late = false;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      late = true;
      reject(timedOut());
    }, ms);
  });
  p.then((v) => late && onLate?.(v), () => {});
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
