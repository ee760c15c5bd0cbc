/**
 * The ports a flood goes to, in attach order (peers' fast paths never carry floods), kept as
 * an array so a flood allocates nothing. A port that leaves only marks the list stale; it is
 * rebuilt at the next flood, so a proxy losing 10,000 hosts at once does not copy a
 * 10,000-port list 10,000 times.
 *
 * @module
 */

import type { Port } from "./port.ts";

/** Flood targets of one switch. */
export class FloodList {
  #list: Port[] = [];
  #stale = false;
  readonly #ports: () => Iterable<Port>;

  /** @param ports the switch's ports in attach order, read only to rebuild */
  constructor(ports: () => Iterable<Port>) {
    this.#ports = ports;
  }

  /** A port was attached (after any it replaced left). */
  attached(port: Port): void {
    if (port.kind !== "peer" && !this.#stale) this.#list.push(port);
  }

  /** A port left. */
  detached(): void {
    this.#stale = true;
  }

  /** The targets now, rebuilt when a port left since the last call. */
  ports(): readonly Port[] {
    if (this.#stale) {
      this.#list = [...this.#ports()].filter((p) => p.kind !== "peer");
      this.#stale = false;
    }
    return this.#list;
  }
}
