/**
 * Revoking a host (`agent hosts revoke NAME`): its record goes from the host book (the name
 * is free again), its key joins the deny list, its link closes now, every connected host gets
 * the new deny list (no fast path with that key, and one that exists is closed), and it is an
 * event and a log line.
 *
 * @module
 */

import type { Clock } from "../agent/clock.ts";
import { logger } from "../agent/log.ts";
import type { EventHub } from "./events.ts";
import type { HostBook, HostRecord } from "./host_book.ts";
import type { HostRegistry } from "./host_registry.ts";

/** Revokes host `name`; resolves to its record, or null when the book has no such host. */
export async function revokeHost(
  name: string,
  ctx: { book: HostBook; hosts: HostRegistry; events: EventHub; clock: Clock },
): Promise<HostRecord | null> {
  const r = await ctx.book.revoke(name, ctx.clock.now());
  if (!r) return null;
  ctx.hosts.links.get(name)?.close("revoked by the operator");
  const keys = ctx.book.revoked().map((k) => k.key);
  for (const link of ctx.hosts.links.values()) link.sendControl({ type: "keys-revoked", keys });
  logger("proxy").warn("Host {host} revoked: key {key} is denied from now on", {
    host: name,
    key: r.key,
  });
  ctx.events.emit({ type: "host", at: ctx.clock.now(), host: name, state: "revoked", key: r.key });
  return r;
}
