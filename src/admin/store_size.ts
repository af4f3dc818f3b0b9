/**
 * How much disk the store takes (the KV database and its SQLite journal files), for the
 * console's overview (the filesystem's free space: `src/store/disk_space.ts`).
 *
 * @module
 */

import { isKvUrl, kvLocation } from "../store/kv.ts";

/** Bytes of the KV files of `data`; `undefined` for `:memory:`, a URL, or no file yet. */
export async function storeBytes(data: string): Promise<number | undefined> {
  if (data === ":memory:" || isKvUrl(data)) return undefined;
  const file = await kvLocation(data);
  let total: number | undefined;
  for (const suffix of ["", "-wal", "-shm"]) {
    try {
      total = (total ?? 0) + (await Deno.stat(file + suffix)).size;
    } catch {
      // no such file
    }
  }
  return total;
}
