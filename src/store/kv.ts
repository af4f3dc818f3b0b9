/**
 * Opening the gateway's Deno KV store (bindings and call records) from the `--data` setting.
 *
 * @module
 */

import { join } from "node:path";

/** File name of the KV database inside the data directory. */
export const KV_FILE = "gateway.kv";

/** True for a KV Connect URL (`http://` or `https://`), which Deno KV opens remotely. */
export function isKvUrl(location: string): boolean {
  return /^https?:\/\//i.test(location);
}

/**
 * Where {@linkcode openStore} opens the store for a `--data` value: a URL or `:memory:` as is,
 * an existing file as is, otherwise `<dir>/gateway.kv`.
 */
export async function kvLocation(pathOrUrl: string): Promise<string> {
  if (pathOrUrl === ":memory:" || isKvUrl(pathOrUrl)) return pathOrUrl;
  try {
    if ((await Deno.stat(pathOrUrl)).isFile) return pathOrUrl;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return join(pathOrUrl, KV_FILE);
}

/**
 * Opens the store: a KV Connect URL or `:memory:` is passed to `Deno.openKv` unchanged; a
 * directory is created if needed and `<dir>/gateway.kv` opened in it. The caller closes the
 * returned store.
 *
 * @throws {RangeError} for an empty location.
 * @throws {Error} "Cannot open store at …" when the directory or database cannot be opened.
 */
export async function openStore(pathOrUrl: string): Promise<Deno.Kv> {
  if (pathOrUrl === "") throw new RangeError("Cannot open store: empty data location");
  try {
    const location = await kvLocation(pathOrUrl);
    if (location !== pathOrUrl) await Deno.mkdir(pathOrUrl, { recursive: true });
    return await Deno.openKv(location);
  } catch (e) {
    throw new Error(
      `Cannot open store at ${pathOrUrl}: ${e instanceof Error ? e.message : String(e)}`,
      { cause: e },
    );
  }
}
