/**
 * Control messages carried in CONTROL frames between the proxy and hosts: the public face.
 * Everything a peer sends is validated into a typed message or refused with a `ProtocolError`,
 * so the daemon acts only on well-formed input and never dies from what a peer sends.
 *
 *     proxy_messages.ts   proxy -> host: the types, their limits, one validator per type
 *     host_messages.ts    host -> proxy: likewise, with the traffic report's bounds
 *     wire_rule.ts        a forwarding rule as it travels (messages and the API)
 *     parse_fields.ts     the field validators the parsers share
 *
 * This file keeps the one parser per direction: each refuses a message of the other direction
 * by name, so a wrong-direction message is refused at the boundary, never acted on.
 *
 * @module
 */

import { ProtocolError } from "../link/wire.ts";
import { HOST_MESSAGE_TYPES, type HostMessage, parseFromHost } from "./host_messages.ts";
import { parseFromProxy, PROXY_MESSAGE_TYPES, type ProxyMessage } from "./proxy_messages.ts";

export * from "./host_messages.ts";
export * from "./proxy_messages.ts";
export * from "./wire_rule.ts";

/** Every control message this version understands, either way. */
export type ControlMessage = ProxyMessage | HostMessage;

const FROM_PROXY: ReadonlySet<string> = new Set(PROXY_MESSAGE_TYPES);
const KNOWN: ReadonlySet<string> = new Set([...PROXY_MESSAGE_TYPES, ...HOST_MESSAGE_TYPES]);

/**
 * Validates a CONTROL message a host sent (already JSON-parsed): the proxy's parser. A message
 * only the proxy sends is refused like a malformed one.
 *
 * @throws {ProtocolError} for an unknown type, the wrong direction or a malformed field.
 * @example
 * ```ts
 * import { parseHostMessage } from "./messages.ts";
 * const m = parseHostMessage({ type: "listening", address: ":7810" });
 * if (m.type !== "listening") throw new Error();
 * try {
 *   parseHostMessage({ type: "rule-add", rule: { src: null, dst: null, target: "drop" } });
 *   throw new Error("accepted a proxy's message from a host");
 * } catch (e) {
 *   if (!(e as Error).message.includes("only the proxy sends it")) throw e;
 * }
 * ```
 */
export function parseHostMessage(v: unknown): HostMessage {
  const type = typeOf(v);
  if (FROM_PROXY.has(type)) {
    throw new ProtocolError(`Cannot accept ${type} from a host: only the proxy sends it`);
  }
  const o = v as Record<string, unknown>;
  return parseFromHost(o) ?? unknownType(o);
}

/**
 * Validates a CONTROL message the proxy sent (already JSON-parsed): the host's parser.
 *
 * @throws {ProtocolError} for an unknown type, the wrong direction or a malformed field.
 * @example
 * ```ts
 * import { parseProxyMessage } from "./messages.ts";
 * const m = parseProxyMessage({ type: "mac-check", mac: "02:00:00:00:00:01" });
 * if (m.type !== "mac-check") throw new Error();
 * ```
 */
export function parseProxyMessage(v: unknown): ProxyMessage {
  const type = typeOf(v);
  if (!FROM_PROXY.has(type) && KNOWN.has(type)) {
    throw new ProtocolError(`Cannot act on ${type} from the proxy: only hosts send it`);
  }
  const o = v as Record<string, unknown>;
  return parseFromProxy(o) ?? unknownType(o);
}

function typeOf(v: unknown): string {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new ProtocolError("Cannot accept control message: not a JSON object");
  }
  return String((v as Record<string, unknown>).type);
}

function unknownType(o: Record<string, unknown>): never {
  throw new ProtocolError(
    `Cannot accept control message: unknown type ${JSON.stringify(String(o.type).slice(0, 40))}`,
  );
}
