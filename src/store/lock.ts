/**
 * The store's lock: a gateway holds an exclusive lock (`flock`) on `<data>/gateway.lock` while it
 * runs, and so does a restore or a migration from the command line, so that a restore never
 * swaps the database under a running gateway and two gateways never share one store. The
 * kernel drops the lock when the process ends, however it ends. The file holds the pid of the
 * holder, for the message.
 *
 * The 0.1.0 gateway took no lock: a restore cannot see it (stop it first).
 *
 * @module
 */

import { dirname, join } from "node:path";
import { isKvUrl, kvLocation } from "./kv.ts";

/** File name of the lock beside `gateway.kv` (a `--data` naming a file: `<file>.lock`). */
export const LOCK_FILE = "gateway.lock";

/** A held lock. */
export interface StoreLock extends Disposable {
  /** The lock file. */
  readonly path: string;
  /** Releases the lock (closes the file; the file stays). */
  release(): void;
}

/** The lock file of a `--data` value, or `undefined` for `:memory:` and KV Connect URLs. */
export async function lockPath(pathOrUrl: string): Promise<string | undefined> {
  if (pathOrUrl === ":memory:" || isKvUrl(pathOrUrl)) return undefined;
  const file = await kvLocation(pathOrUrl);
  return file === pathOrUrl ? `${file}.lock` : join(dirname(file), LOCK_FILE);
}

/**
 * Takes the store's lock without waiting; `undefined` for stores without a file. Creates the
 * data directory when missing.
 *
 * @throws {Error} "Cannot lock the store …: it is locked by process N …" when another process
 *   holds it.
 */
export async function lockStore(pathOrUrl: string): Promise<StoreLock | undefined> {
  const path = await lockPath(pathOrUrl);
  if (path === undefined) return undefined;
  await Deno.mkdir(dirname(path), { recursive: true });
  const file = await Deno.open(path, { read: true, write: true, create: true });
  let locked = false;
  try {
    locked = await file.tryLock(true);
    if (!locked) {
      const holder = (await Deno.readTextFile(path).catch(() => "")).trim();
      throw new Error(
        `Cannot lock the store ${path}: it is locked by ${
          /^\d+$/.test(holder) ? `process ${holder}` : "another process"
        } (a running gateway, a restore or a migration); stop it first`,
      );
    }
    await file.truncate(0);
    await file.write(new TextEncoder().encode(`${Deno.pid}\n`));
  } catch (e) {
    file.close();
    throw e;
  }
  let open = true;
  const release = () => {
    if (!open) return;
    open = false;
    file.close();
  };
  return { path, release, [Symbol.dispose]: release };
}

/** True when another process holds the lock of `pathOrUrl` (checked by trying it). */
export async function storeLocked(pathOrUrl: string): Promise<boolean> {
  try {
    const lock = await lockStore(pathOrUrl);
    lock?.release();
    return false;
  } catch (e) {
    if (e instanceof Error && / is locked by /.test(e.message)) return true;
    throw e;
  }
}
