/**
 * Files that hold secrets (private keys, the join token): written so that no other user can
 * read them at any moment, and refused when read if someone loosened their mode since.
 *
 * A secret file is written to a temporary file in the same directory, created with mode 0600
 * and chmod-ed to 0600 again (so neither a umask nor a directory's default ACL can widen it),
 * synced, then renamed over the destination. The rename is atomic, so a crash leaves either the
 * old file or the new one, never a torn or briefly world-readable one.
 *
 * The write uses synchronous calls. Deno's asynchronous file operations each wait for an
 * event-loop turn, and under a join storm the proxy's host book (600 KB at 3,000 hosts) took
 * up to 4 s to write that way, against 3 ms synchronously, with every joining host waiting
 * for it. Secret files are small and rarely written, so blocking for one is the cheaper wait.
 *
 * @module
 */

/** Mode bits a secret file must not have: any access by the group or by others. */
const GROUP_OR_OTHERS = 0o077;

/** Largest secret file read: keys and tokens are a few hundred bytes. */
const MAX_SECRET_FILE_BYTES = 64 * 1024;

/**
 * Writes `text` to `path` with mode 0600, atomically replacing any existing file.
 *
 * @throws {Error} when the directory is missing or not writable; the message names the path
 * but never the contents.
 * @example
 * ```ts
 * import { readSecretFile, writeSecretFile } from "./secret_file.ts";
 * const dir = await Deno.makeTempDir();
 * await writeSecretFile(`${dir}/token`, "s3cret\n");
 * if (((await Deno.stat(`${dir}/token`)).mode! & 0o777) !== 0o600) throw new Error("mode");
 * if (await readSecretFile(`${dir}/token`) !== "s3cret\n") throw new Error("text");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function writeSecretFile(path: string, text: string): Promise<void> {
  try {
    writeSecretFileSync(path, text);
    return Promise.resolve();
  } catch (error) {
    return Promise.reject(error);
  }
}

/** {@linkcode writeSecretFile}, returning when the file is in place. */
export function writeSecretFileSync(path: string, text: string): void {
  const slash = path.lastIndexOf("/");
  const dir = slash < 0 ? "." : path.slice(0, slash + 1);
  const name = path.slice(slash + 1);
  const suffix = crypto.getRandomValues(new Uint8Array(6)).toHex();
  const temp = `${dir}.${name}.${suffix}.tmp`;
  const bytes = new TextEncoder().encode(text);
  let file: Deno.FsFile | undefined;
  let created = false;
  try {
    file = Deno.openSync(temp, { write: true, createNew: true, mode: 0o600 });
    created = true;
    Deno.chmodSync(temp, 0o600);
    for (let written = 0; written < bytes.length;) {
      written += file.writeSync(bytes.subarray(written));
    }
    file.syncDataSync();
    file.close();
    file = undefined;
    Deno.renameSync(temp, path);
  } catch (error) {
    file?.close();
    if (created) {
      try {
        Deno.removeSync(temp);
      } catch { /* already gone */ }
    }
    throw new Error(
      `Cannot write secret file ${path}: ${errorMessage(error)}. ` +
        `Check that ${dir} exists and that this user may write to it`,
      { cause: error },
    );
  }
}

/**
 * Reads a secret file, refusing it when its mode lets the group or others access it.
 *
 * The mode is checked on the opened file (not the path), so a file swapped in between the
 * check and the read is still the one checked.
 *
 * @throws {Deno.errors.NotFound} when the file does not exist (callers that create missing
 * files catch this).
 * @throws {Error} when the file is accessible by group or others, is not a regular file, is
 * too large, or is not UTF-8; the message names the fix but never the contents.
 * @example
 * ```ts
 * import { readSecretFile } from "./secret_file.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/key`, "secret", { mode: 0o644 });
 * await Deno.chmod(`${dir}/key`, 0o644);
 * const refused = await readSecretFile(`${dir}/key`).then(() => false, () => true);
 * if (!refused) throw new Error("a 0644 secret file must be refused");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readSecretFile(path: string): Promise<string> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Deno.errors.NotFound(`Cannot read secret file ${path}: it does not exist`, {
        cause: error,
      });
    }
    throw new Error(
      `Cannot read secret file ${path}: ${errorMessage(error)}. ` +
        `Run the agent as the user that owns the file`,
      { cause: error },
    );
  }
  try {
    const info = await file.stat();
    if (!info.isFile) {
      throw new Error(`Cannot read secret file ${path}: it is not a regular file`);
    }
    if (info.mode !== null && (info.mode & GROUP_OR_OTHERS) !== 0) {
      const mode = (info.mode & 0o777).toString(8).padStart(4, "0");
      throw new Error(
        `Cannot read secret file ${path}: its mode is ${mode}, so the group or others can ` +
          `access it. Run \`chmod 600 ${path}\`; if someone else may have read it, replace ` +
          `the secret`,
      );
    }
    if (info.size > MAX_SECRET_FILE_BYTES) {
      throw new Error(
        `Cannot read secret file ${path}: it is ${info.size} bytes, more than the ` +
          `${MAX_SECRET_FILE_BYTES} a key or token takes. Check that the path names the right file`,
      );
    }
    const bytes = new Uint8Array(info.size);
    let length = 0;
    while (length < bytes.length) {
      const n = await file.read(bytes.subarray(length));
      if (n === null) break;
      length += n;
    }
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(0, length));
    } catch (error) {
      throw new Error(
        `Cannot read secret file ${path}: it is not UTF-8 text. Check that the path names ` +
          `the right file`,
        { cause: error },
      );
    }
  } finally {
    file.close();
  }
}

/**
 * Like {@linkcode readSecretFile}, but null when the file does not exist (yet): what a store
 * that starts empty reads at start.
 */
export async function readSecretFileIfExists(path: string): Promise<string | null> {
  try {
    return await readSecretFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
