/**
 * The proxy's book of hosts: who may be in the overlay under which name, as data. A name
 * belongs to the key that first joined with it; each admitted host has a rejoin secret of its
 * own (so it comes back without the join token, which may expire or be rotated); a revoked
 * key can never join again. Operators read it with `agent hosts` and change it with
 * `agent hosts revoke NAME`.
 *
 *     state-dir/hosts.json (0600, written atomically, one write at a time):
 *     { "version": 2,
 *       "hosts":   { NAME: { key, secret, firstJoined, lastSeen, certSerial, certExpires } },
 *       "revoked": [ { key, name, at } ] }
 *
 * Records are keyed by name and carry their own times, so that several proxies can later
 * merge their books record by record. A version-1 file (NAME -> secret) is read as records
 * whose key is bound by the host's next join.
 *
 * @module
 */

import { readSecretFileIfExists, writeSecretFileSync } from "../agent/secret_file.ts";

/** What the proxy keeps about one admitted host. */
export interface HostRecord {
  name: string;
  /** Fingerprint of the host's key (`SHA256:...`); null until a version-1 record is rebound. */
  key: string | null;
  /** Rejoin secret, base64url. Never leaves the proxy except to its own host, once. */
  secret: string;
  /** First admission, ms since the epoch. */
  firstJoined: number;
  /** Last admission, ms since the epoch. */
  lastSeen: number;
  /** Serial (hex) and expiry of the last certificate issued to it. */
  certSerial: string | null;
  certExpires: number | null;
}

/** A key that may never join again. */
export interface RevokedKey {
  key: string;
  /** The name it had. */
  name: string;
  /** When it was revoked, ms since the epoch. */
  at: number;
}

/** Revoked keys remembered (the oldest are forgotten beyond this). */
const MAX_REVOKED = 10_000;

/** The book, loaded from and saved to `state-dir/hosts.json`. */
export class HostBook {
  /** Where each save writes the whole book (see {@linkcode HostBook.#save}). */
  readonly #path: string;
  readonly #hosts: Map<string, HostRecord>;
  readonly #revoked: RevokedKey[];

  private constructor(path: string, hosts: Map<string, HostRecord>, revoked: RevokedKey[]) {
    this.#path = path;
    this.#hosts = hosts;
    this.#revoked = revoked;
  }

  /** An empty book that saves to `path` (for tests); {@linkcode load} reads one. */
  static empty(path: string): HostBook {
    return new HostBook(path, new Map(), []);
  }

  /** Loads `state-dir/hosts.json`, or starts empty when it does not exist. */
  static async load(stateDir: string): Promise<HostBook> {
    const path = `${stateDir}/hosts.json`;
    const text = await readSecretFileIfExists(path);
    if (text === null) return HostBook.empty(path);
    const fail = (why: string): never => {
      throw new Error(
        `Cannot load the host book ${path}: ${why}. Restore it from a backup, or delete it ` +
          "(every host then joins again with the join token, and revocations are forgotten)",
      );
    };
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      fail("not JSON");
    }
    if (typeof parsed !== "object" || parsed === null) return fail("not a JSON object");
    const o = parsed as Record<string, unknown>;
    const hosts = new Map<string, HostRecord>();
    if (o.version === undefined) {
      // Version 1: name -> rejoin secret.
      for (const [name, secret] of Object.entries(o)) {
        if (typeof secret === "string") hosts.set(name, legacyRecord(name, secret));
      }
      return new HostBook(path, hosts, []);
    }
    if (o.version !== 2) return fail(`version ${String(o.version)} is not one this agent reads`);
    for (const [name, r] of Object.entries((o.hosts ?? {}) as Record<string, unknown>)) {
      hosts.set(name, parseRecord(name, r) ?? fail(`the record of ${name} is malformed`));
    }
    const revoked = Array.isArray(o.revoked) ? o.revoked.filter(isRevokedKey) : [];
    return new HostBook(path, hosts, revoked);
  }

  /** The record of host `name`. */
  get(name: string): Readonly<HostRecord> | undefined {
    return this.#hosts.get(name);
  }

  /** Host `name`'s rejoin secret, if it has one. */
  secretOf(name: string): Uint8Array | null {
    const r = this.#hosts.get(name);
    return r ? Uint8Array.fromBase64(r.secret, { alphabet: "base64url" }) : null;
  }

  /** The revocation of `key`, if it was revoked. */
  revocationOf(key: string): Readonly<RevokedKey> | undefined {
    return this.#revoked.find((r) => r.key === key);
  }

  /** Every record, by name. */
  list(): HostRecord[] {
    return [...this.#hosts.values()].map((r) => ({ ...r })).sort((a, b) =>
      a.name < b.name ? -1 : 1
    );
  }

  /** Every revoked key, oldest first. */
  revoked(): RevokedKey[] {
    return this.#revoked.map((r) => ({ ...r }));
  }

  /**
   * Records an admission of `name` with `key` (binding the name to the key on its first
   * admission) and returns the host's rejoin secret, created on first admission. The caller
   * has checked that the name is not bound to another key.
   */
  async admit(
    name: string,
    key: string,
    cert: { serial: string; notAfter: number } | null,
    now: number,
  ): Promise<string> {
    let r = this.#hosts.get(name);
    if (r && r.key !== null && r.key !== key) {
      throw new Error(`Cannot admit ${name}: the name belongs to another key`);
    }
    if (!r) {
      r = {
        name,
        key,
        secret: crypto.getRandomValues(new Uint8Array(32)).toBase64({
          alphabet: "base64url",
          omitPadding: true,
        }),
        firstJoined: now,
        lastSeen: now,
        certSerial: null,
        certExpires: null,
      };
      this.#hosts.set(name, r);
    }
    r.key = key;
    r.lastSeen = now;
    if (cert) {
      r.certSerial = cert.serial;
      r.certExpires = cert.notAfter;
    }
    this.#texts.delete(name);
    await this.#save();
    return r.secret;
  }

  /** Records a certificate renewed for host `name` while it runs. */
  async recordCertificate(
    name: string,
    cert: { serial: string; notAfter: number },
    now: number,
  ): Promise<void> {
    const r = this.#hosts.get(name);
    if (!r) return;
    r.certSerial = cert.serial;
    r.certExpires = cert.notAfter;
    r.lastSeen = now;
    this.#texts.delete(name);
    await this.#save();
  }

  /**
   * Revokes host `name`: its record goes (the name is free again) and its key joins the deny
   * list. Returns the record, or null when there was none.
   */
  async revoke(name: string, now: number): Promise<HostRecord | null> {
    const r = this.#hosts.get(name);
    if (!r) return null;
    this.#hosts.delete(name);
    this.#texts.delete(name);
    if (r.key !== null && !this.revocationOf(r.key)) {
      this.#revoked.push({ key: r.key, name, at: now });
      if (this.#revoked.length > MAX_REVOKED) this.#revoked.shift();
    }
    await this.#save();
    return r;
  }

  /**
   * Each record as it appears in the file, kept until the record changes: a write of ten
   * thousand records joins their texts instead of serializing them all again (10 ms of CPU
   * per write at that size, and a join storm writes back to back).
   */
  readonly #texts = new Map<string, string>();

  /** The file's text: the same JSON as `JSON.stringify(book, null, 1)`. */
  #serialize(): string {
    const records: string[] = [];
    for (const [name, r] of this.#hosts) {
      let t = this.#texts.get(name);
      if (t === undefined) {
        t = `  ${JSON.stringify(name)}: ${JSON.stringify(r, null, 1).replaceAll("\n", "\n  ")}`;
        this.#texts.set(name, t);
      }
      records.push(t);
    }
    const hosts = records.length ? `{\n${records.join(",\n")}\n }` : "{}";
    const revoked = JSON.stringify(this.#revoked, null, 1).replaceAll("\n", "\n ");
    return `{\n "version": 2,\n "hosts": ${hosts},\n "revoked": ${revoked}\n}\n`;
  }

  /** Writes of the book made so far (one per event-loop turn that changed it, or fewer). */
  get writes(): number {
    return this.#writes;
  }

  /** The write of the changes made since the last one, not yet made. */
  #next: Promise<void> | null = null;
  #writes = 0;
  /** How long the last write took, and when it ended (performance.now()). */
  #lastWrite = { tookMs: 0, endedAt: -Infinity };

  /**
   * Group commit: the changes made until the next write share it (secret files are written
   * synchronously, see secret_file.ts), and each caller's promise settles with the write that
   * holds its change. The write comes at the next turn, or later when writes are costly (see
   * {@linkcode bookWriteDelayMs}): a 10,000-host book is 3 MB to serialize, write and sync,
   * and a storm changes it every turn.
   */
  #save(): Promise<void> {
    this.#next ??= new Promise<void>((resolve, reject) => {
      const last = this.#lastWrite;
      setTimeout(() => {
        this.#next = null;
        this.#writes++;
        const t0 = performance.now();
        try {
          writeSecretFileSync(this.#path, this.#serialize());
          resolve();
        } catch (e) {
          reject(e);
        } finally {
          const now = performance.now();
          this.#lastWrite = { tookMs: now - t0, endedAt: now };
        }
      }, bookWriteDelayMs(last.tookMs, performance.now() - last.endedAt));
    });
    return this.#next;
  }
}

/** Largest share of the thread the book's writes may take while it changes continuously. */
export const BOOK_WRITE_SHARE = 0.2;

/**
 * How long a new change waits before the book is written, when the last write took
 * `tookMs` and ended `sinceMs` ago: at once for a cheap write, else long enough that writes
 * take at most {@linkcode BOOK_WRITE_SHARE} of the thread (a 20 ms write of a 10,000-host
 * book: one every 100 ms). The change's admission waits that much longer for its WELCOME;
 * its handshake slot is already free.
 *
 * @example
 * ```ts
 * import { bookWriteDelayMs } from "./host_book.ts";
 * if (bookWriteDelayMs(0.5, 1) !== 1) throw new Error("cheap: the next turn (2 ms gap)");
 * if (bookWriteDelayMs(20, 30) !== 50) throw new Error("costly: 80 ms apart, 30 gone");
 * if (bookWriteDelayMs(20, 500) !== 0) throw new Error("long since: at once");
 * ```
 */
export function bookWriteDelayMs(tookMs: number, sinceMs: number): number {
  const gap = tookMs * (1 / BOOK_WRITE_SHARE - 1);
  return Math.max(0, Math.ceil(gap - sinceMs));
}

function legacyRecord(name: string, secret: string): HostRecord {
  return {
    name,
    key: null,
    secret,
    firstJoined: 0,
    lastSeen: 0,
    certSerial: null,
    certExpires: null,
  };
}

function parseRecord(name: string, v: unknown): HostRecord | null {
  if (typeof v !== "object" || v === null) return null;
  const r = v as Record<string, unknown>;
  const num = (x: unknown) => (typeof x === "number" && Number.isFinite(x) ? x : null);
  if (typeof r.secret !== "string" || (r.key !== null && typeof r.key !== "string")) return null;
  return {
    name,
    key: r.key as string | null,
    secret: r.secret,
    firstJoined: num(r.firstJoined) ?? 0,
    lastSeen: num(r.lastSeen) ?? 0,
    certSerial: typeof r.certSerial === "string" ? r.certSerial : null,
    certExpires: num(r.certExpires),
  };
}

function isRevokedKey(v: unknown): v is RevokedKey {
  if (typeof v !== "object" || v === null) return false;
  const r = v as Record<string, unknown>;
  return typeof r.key === "string" && typeof r.name === "string" && typeof r.at === "number";
}
