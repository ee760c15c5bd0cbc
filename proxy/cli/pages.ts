/**
 * Long lists read a page at a time: `agent vms` and `agent status` ask for pages of
 * {@linkcode LIST_PAGE} and merge them, so no reply the CLI asks for grows with the overlay.
 *
 *     GET path?offset=0&limit=5000 ──> page 1 ──┐
 *     GET path?offset=5000&limit=5000 ──> ...   ├─ merged into the first ──> shown
 *     ... until a page shorter than LIST_PAGE ──┘
 *
 * @module
 */

import type { Answer, ApiClient } from "./api_client.ts";

/** Entries per page of a long list: each reply stays small however long the list. */
export const LIST_PAGE = 5_000;

/**
 * A long reply read a page at a time (`?offset=N&limit=LIST_PAGE`, until a short page), each
 * page merged into the first: with 100,000 VMs the whole VM list at once is 14.8 MB and
 * 230-340 ms of the proxy's one thread, and 10,000 hosts' status 4 MB and 44-123 ms; a page is
 * a few milliseconds. Pages are read one after another, so a list that changes meanwhile may
 * show an entry twice or miss one that moved in the order. The first refusal is the answer.
 *
 * @example
 * ```ts
 * import { LIST_PAGE, readPages } from "./pages.ts";
 * const list = Array.from({ length: LIST_PAGE + 1 }, (_, i) => i);
 * const api = {
 *   call<T>(_m: string, path: string) {
 *     const offset = Number(new URL(path, "http://x").searchParams.get("offset"));
 *     const reply = list.slice(offset, offset + LIST_PAGE) as T;
 *     return Promise.resolve({ ok: true as const, status: 200, reply });
 *   },
 * };
 * const a = await readPages<number[]>(api, "/api/vms", (r) => r.length, (all, p) => all.push(...p));
 * if (!a.ok || a.reply.length !== LIST_PAGE + 1) throw new Error("two pages, merged");
 * ```
 */
export async function readPages<T>(
  api: Pick<ApiClient, "call">,
  path: string,
  entries: (reply: T) => number,
  merge: (into: T, page: T) => void,
): Promise<Answer<T>> {
  let whole: T | null = null;
  for (let offset = 0;; offset += LIST_PAGE) {
    const a = await api.call<T>("GET", `${path}?offset=${offset}&limit=${LIST_PAGE}`);
    if (!a.ok) return a;
    if (whole === null) whole = a.reply;
    else merge(whole, a.reply);
    if (entries(a.reply) < LIST_PAGE) return { ...a, reply: whole };
  }
}
