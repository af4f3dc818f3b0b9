/**
 * Opening the gateway's Deno KV store (bindings and call records) from the `--data` setting,
 * with the check of its schema version ({@linkcode ./schema.ts}): a command never reads a store
 * of another layout than its own.
 *
 * @module
 */

import { dirname, join } from "node:path";
import denoJson from "../../deno.json" with { type: "json" };
import { LATEST_SCHEMA } from "./migrations.ts";
import {
  readSchema,
  StoreVersionError,
  tooNewMessage,
  tooOldMessage,
  writeSchema,
} from "./schema.ts";

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

/** Options of {@linkcode openStore}. */
export interface OpenStoreOptions {
  /**
   * `"check"`: refuse a store of another schema version than {@linkcode LATEST_SCHEMA} (a new,
   * empty store gets the mark); `"any"`: open whatever it holds (backup, migration, schema
   * commands). @default {"check"}
   */
  readonly schema?: "check" | "any";
}

/**
 * Opens the store: a KV Connect URL or `:memory:` is passed to `Deno.openKv` unchanged; a
 * directory is created if needed and `<dir>/gateway.kv` opened in it. The caller closes the
 * returned store.
 *
 * @throws {RangeError} for an empty location.
 * @throws {Error} "Cannot open store at …" when the directory or database cannot be opened.
 * @throws {StoreVersionError} "Cannot open the store …: it was written by schema version N, …"
 *   (newer) or "…: it has schema version N, …" (older, not migrated yet), with `schema: "check"`.
 */
export async function openStore(
  pathOrUrl: string,
  options: OpenStoreOptions = {},
): Promise<Deno.Kv> {
  if (pathOrUrl === "") throw new RangeError("Cannot open store: empty data location");
  let kv: Deno.Kv;
  let location: string;
  try {
    location = await kvLocation(pathOrUrl);
    if (location !== pathOrUrl) await Deno.mkdir(pathOrUrl, { recursive: true });
    kv = await Deno.openKv(location);
  } catch (e) {
    throw new Error(
      `Cannot open store at ${pathOrUrl}: ${e instanceof Error ? e.message : String(e)}`,
      { cause: e },
    );
  }
  if (options.schema === "any") return kv;
  try {
    const schema = await readSchema(kv);
    if (schema.empty) {
      await writeSchema(kv, schema, { version: LATEST_SCHEMA, writtenBy: denoJson.version });
    } else if (schema.version > LATEST_SCHEMA) {
      const local = location !== ":memory:" && !isKvUrl(location);
      throw new StoreVersionError(
        tooNewMessage(location, schema, LATEST_SCHEMA, {
          ...(local ? { root: join(dirname(location), "backup") } : {}),
        }),
        schema.version,
        LATEST_SCHEMA,
      );
    } else if (schema.version < LATEST_SCHEMA) {
      throw new StoreVersionError(
        tooOldMessage(location, schema.version, LATEST_SCHEMA),
        schema.version,
        LATEST_SCHEMA,
      );
    }
  } catch (e) {
    kv.close();
    throw e;
  }
  return kv;
}
