/**
 * Certificates renewed while hosts run. A host's certificate is valid for `cert-lifetime`
 * (30 days by default, not a year: a certificate that leaked with a revoked host's disk stops
 * working soon after, whatever the deny list reaches). Every check, each connected host whose
 * certificate has less than a third of its lifetime left gets a new one over its star link,
 * and presents it on its fast-path listener from then on.
 *
 *     every lifetime/12 (at most hourly) ──> connected host, certificate expiring?
 *         ──yes──> issue for the key it joined with ──> "certificate" ──> host re-listens
 *                                             └──> hosts.json (serial, expiry)
 *
 * @module
 */

import type { Clock } from "../agent/clock.ts";
import type { Config } from "../agent/config/schema.ts";
import type { ProxyState } from "./bootstrap.ts";
import { logger } from "../agent/log.ts";
import type { HostBook } from "./host_book.ts";
import type { HostRegistry } from "./host_registry.ts";
import type { IssuedCertificate } from "./pki/ca.ts";

/** What renewal works with. */
export interface RenewalDeps {
  hosts: HostRegistry;
  book: HostBook;
  /** Issues a certificate for `name`'s key, valid for the lifetime from now. */
  issue(name: string, spkiB64: string): Promise<IssuedCertificate>;
  lifetimeMs: number;
  clock: Clock;
}

/** Longest wait between two checks. */
const MAX_CHECK_MS = 3_600_000;

/** Renews hosts' certificates before they expire. */
export class CertRenewal {
  readonly #deps: RenewalDeps;
  readonly #log = logger("proxy");
  /** Hosts with a renewal in flight (issuing takes a few ms). */
  readonly #busy = new Set<string>();
  /** Certificates renewed so far. */
  renewed = 0;

  constructor(deps: RenewalDeps) {
    this.#deps = deps;
  }

  /** Renewal as the proxy runs it: the config's lifetime, certificates from its CA. */
  static fromConfig(
    config: Pick<Config, "certLifetime">,
    parts: { hosts: HostRegistry; state: Pick<ProxyState, "book" | "pki">; clock: Clock },
  ): CertRenewal {
    const { hosts, state, clock } = parts;
    return new CertRenewal({
      hosts,
      book: state.book,
      issue: (name, spki) =>
        state.pki.issueHostCertificate(name, spki, {
          lifetimeMs: config.certLifetime,
          now: clock.now(),
        }),
      lifetimeMs: config.certLifetime,
      clock,
    });
  }

  /** How often to check: a twelfth of the lifetime, at most an hour. */
  get intervalMs(): number {
    return Math.min(MAX_CHECK_MS, Math.max(1_000, this.#deps.lifetimeMs / 12));
  }

  /** Checks every connected host once; resolves when the renewals sent are recorded. */
  async check(now: number): Promise<void> {
    const { hosts, book, lifetimeMs } = this.#deps;
    const due: Promise<void>[] = [];
    for (const [name, link] of hosts.links) {
      const expires = book.get(name)?.certExpires ?? null;
      const identity = hosts.identityOf(name);
      if (!identity || this.#busy.has(name)) continue;
      if (expires !== null && expires - now > lifetimeMs / 3) continue;
      this.#busy.add(name);
      due.push(
        this.#renew(name, identity.spkiB64, now, (pem) => link.sendControl(pem))
          .finally(() => this.#busy.delete(name)),
      );
    }
    await Promise.all(due);
  }

  async #renew(
    name: string,
    spkiB64: string,
    now: number,
    send: (msg: { type: "certificate"; certificate: string }) => boolean,
  ): Promise<void> {
    try {
      const { pem, info } = await this.#deps.issue(name, spkiB64);
      if (!send({ type: "certificate", certificate: pem })) return;
      await this.#deps.book.recordCertificate(name, info, now);
      this.renewed++;
      this.#log.info("Renewed host {host}'s certificate (serial {serial}, until {until})", {
        host: name,
        serial: info.serial,
        until: new Date(info.notAfter).toISOString(),
      });
    } catch (e) {
      this.#log.warn("Cannot renew host {host}'s certificate: {error}; trying again later", {
        host: name,
        error: (e as Error).message,
      });
    }
  }

  /** Checks every {@linkcode intervalMs} until `signal` aborts. */
  run(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const timer = this.#deps.clock.every(
        this.intervalMs,
        () => void this.check(this.#deps.clock.now()),
      );
      signal.addEventListener("abort", () => {
        timer.cancel();
        resolve();
      }, { once: true });
    });
  }
}
