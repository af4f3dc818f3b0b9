/**
 * Backups of the store: before every migration (by the gateway at start, or `migrate`), on the
 * manager's `backup` command, and of the current store before a `restore` replaces it.
 *
 * A backup is a directory `<data>/backup/<schema version>-<time>/` (or the `--to` directory)
 * holding `gateway.kv`, a Deno KV store of its own, and `backup.json` ({@linkcode
 * BackupManifest}), written last: a directory without it is not a backup.
 *
 * How it is copied: the source is open in Deno KV and every entry is copied with
 * `kv.list({ prefix: [] })` into a new KV file, rather than copying the SQLite files. That works
 * while a gateway runs on the store (the files of a live database, its `-wal` and `-shm`
 * included, cannot be copied consistently without SQLite's own backup API, which Deno does not
 * offer), the copy is compact and has no WAL beside it, and any gateway version opens it (the
 * 0.1.0 one too). The listing runs in batches, each its own read; so the copy is checked by
 * listing again: when every key still has the versionstamp it was copied at (every write bumps
 * it) and no key came or went, the copy is the store as it was at the end of the first pass;
 * otherwise it is made again (bounded). Versionstamps themselves are not kept (nothing relies on
 * them across a restart), nor are queue messages and expiry times (the gateway uses neither).
 *
 * Kept: the newest {@linkcode KEEP_BACKUPS}, and the newest of every schema version (the one a
 * rollback to that version restores); older ones are deleted after each new backup.
 *
 * @module
 */

import { dirname, join, resolve } from "node:path";
import { isKvUrl, kvLocation } from "./kv.ts";
import { lockStore } from "./lock.ts";
import { LATEST_SCHEMA, migrate, type MigrationReport } from "./migrations.ts";
import { readSchema, type StoredSchema, StoreVersionError, tooNewMessage } from "./schema.ts";
import type { Logger } from "../log.ts";

/** The directory of automatic backups, beside `gateway.kv`. */
export const BACKUP_DIR = "backup";
/** The manifest file of a backup. */
export const MANIFEST_FILE = "backup.json";
/** The database file of a backup. */
export const BACKUP_KV = "gateway.kv";
/** Backups kept in `<data>/backup` (plus the newest of each schema version). */
export const KEEP_BACKUPS = 5;

const COPY_ATTEMPTS = 5;
const COPY_BATCH = 100;
const LIST_BATCH = 500;
const STALE_PARTIAL_MS = 3600_000;

/** What `backup.json` says. */
export interface BackupManifest {
  /** Layout of this manifest. */
  readonly format: 1;
  /** The store's schema version. */
  readonly schema: number;
  /** The gateway version that wrote the schema mark (`null`: none, a 0.1.0 store). */
  readonly writtenBy: string | null;
  /** When the copy was made (ISO 8601). */
  readonly createdAt: string;
  /** Entries copied. */
  readonly entries: number;
  /** Why, e.g. `before migrating to schema 2`, `manual`, `before restore`. */
  readonly reason: string;
  /** The store copied. */
  readonly source: string;
}

/** A backup on disk. */
export interface Backup extends BackupManifest {
  /** Its directory. */
  readonly dir: string;
}

/** The backup directory of the store in `kvFile`. */
export function backupRoot(kvFile: string): string {
  return join(dirname(kvFile), BACKUP_DIR);
}

/** The directory name of a backup: `<schema>-<time>`, e.g. `1-2025-06-01T12-00-00.000Z`. */
export function backupName(schema: number, at: Date): string {
  return `${schema}-${at.toISOString().replaceAll(":", "-")}`;
}

function keyId(key: Deno.KvKey): string {
  return JSON.stringify(
    key.map((p) =>
      typeof p === "bigint"
        ? { i: p.toString() }
        : p instanceof Uint8Array
        ? { u: p.toHex() }
        : typeof p === "number"
        ? { n: String(p) }
        : p
    ),
  );
}

async function removeKvFiles(file: string): Promise<void> {
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    await Deno.remove(f).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    });
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

async function writeBatch(target: Deno.Kv, batch: Deno.KvEntry<unknown>[]): Promise<void> {
  if (batch.length === 0) return;
  const op = target.atomic();
  for (const e of batch) op.set(e.key, e.value);
  let ok = false;
  try {
    ok = (await op.commit()).ok;
  } catch {
    // over an atomic operation's size limits: one by one
  }
  if (!ok) { for (const e of batch) await target.set(e.key, e.value); }
  batch.length = 0;
}

/**
 * Copies every entry of `source` into a new Deno KV file `targetFile` (replaced if present) and
 * resolves to the number of entries; the copy is consistent (see the module notes).
 *
 * @throws {Error} "Cannot copy the store: …" when it kept changing during
 *   {@linkcode COPY_ATTEMPTS} copies.
 */
export async function copyStore(source: Deno.Kv, targetFile: string): Promise<number> {
  for (let attempt = 0; attempt < COPY_ATTEMPTS; attempt++) {
    await removeKvFiles(targetFile);
    const target = await Deno.openKv(targetFile);
    const stamps = new Map<string, string>();
    try {
      const batch: Deno.KvEntry<unknown>[] = [];
      for await (const e of source.list<unknown>({ prefix: [] }, { batchSize: LIST_BATCH })) {
        stamps.set(keyId(e.key), e.versionstamp);
        batch.push(e);
        if (batch.length >= COPY_BATCH) await writeBatch(target, batch);
      }
      await writeBatch(target, batch);
    } finally {
      target.close();
    }
    let same = true;
    let seen = 0;
    for await (const e of source.list<unknown>({ prefix: [] }, { batchSize: LIST_BATCH })) {
      seen++;
      if (stamps.get(keyId(e.key)) !== e.versionstamp) {
        same = false;
        break;
      }
    }
    if (same && seen === stamps.size) return seen;
  }
  await removeKvFiles(targetFile);
  throw new Error(
    `Cannot copy the store: it kept changing during ${COPY_ATTEMPTS} copies; try again (or stop the gateway)`,
  );
}

/** Options of {@linkcode backupStore}. */
export interface BackupOptions {
  /** The store's location (for the manifest). */
  readonly source: string;
  /** The directory that gets `<schema>-<time>/`; or give `to`. */
  readonly root?: string;
  /** The backup directory itself (absent or empty). */
  readonly to?: string;
  /** Why (for the manifest). */
  readonly reason: string;
  /** When. @default now */
  readonly now?: Date;
  /** The store's schema, when read already. */
  readonly schema?: StoredSchema;
}

/**
 * Backs the store in `kv` up (see the module notes) and resolves to the backup.
 *
 * @throws {Error} "Cannot back up the store to …: detail".
 */
export async function backupStore(kv: Deno.Kv, options: BackupOptions): Promise<Backup> {
  const now = options.now ?? new Date();
  const schema = options.schema ?? await readSchema(kv);
  let dir: string;
  if (options.to !== undefined) {
    dir = resolve(options.to);
    if (await exists(dir)) {
      if ((await Array.fromAsync(Deno.readDir(dir))).length > 0) {
        throw new Error(`Cannot back up the store to ${dir}: the directory is not empty`);
      }
      await Deno.remove(dir);
    }
  } else if (options.root !== undefined) {
    const name = backupName(schema.version, now);
    dir = join(options.root, name);
    for (let n = 2; await exists(dir); n++) dir = join(options.root, `${name}-${n}`);
  } else {
    throw new TypeError("Cannot back up the store: give root or to");
  }
  const partial = join(dirname(dir), `.partial-${crypto.randomUUID().slice(0, 8)}`);
  try {
    await Deno.mkdir(partial, { recursive: true });
    const entries = await copyStore(kv, join(partial, BACKUP_KV));
    const manifest: BackupManifest = {
      format: 1,
      schema: schema.version,
      writtenBy: schema.writtenBy ?? null,
      createdAt: now.toISOString(),
      entries,
      reason: options.reason,
      source: options.source,
    };
    await Deno.writeTextFile(
      join(partial, MANIFEST_FILE),
      JSON.stringify(manifest, null, 2) + "\n",
    );
    await Deno.rename(partial, dir);
    return { ...manifest, dir };
  } catch (e) {
    await Deno.remove(partial, { recursive: true }).catch(() => {});
    throw new Error(
      `Cannot back up the store to ${dir}: ${e instanceof Error ? e.message : String(e)}`,
      { cause: e },
    );
  }
}

function isManifest(v: unknown): v is BackupManifest {
  if (typeof v !== "object" || v === null) return false;
  const m = v as Record<string, unknown>;
  return m.format === 1 && Number.isInteger(m.schema) && typeof m.createdAt === "string" &&
    typeof m.entries === "number";
}

/** The backup in `dir` (its manifest), or `undefined` when `dir` is not a complete backup. */
export async function readBackup(dir: string): Promise<Backup | undefined> {
  try {
    const m = JSON.parse(await Deno.readTextFile(join(dir, MANIFEST_FILE)));
    if (!isManifest(m) || !(await exists(join(dir, BACKUP_KV)))) return undefined;
    return { ...m, dir: resolve(dir) };
  } catch {
    return undefined;
  }
}

/** The backups in `root`, newest first (by `createdAt`). */
export async function listBackups(root: string): Promise<Backup[]> {
  const out: Backup[] = [];
  try {
    for await (const e of Deno.readDir(root)) {
      if (!e.isDirectory || e.name.startsWith(".")) continue;
      const b = await readBackup(join(root, e.name));
      if (b) out.push(b);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort((a, b) =>
    a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : a.dir < b.dir ? 1 : -1
  );
}

/** The newest backup a gateway that knows up to `maxSchema` can open, if any. */
export function pickBackup(backups: readonly Backup[], maxSchema: number): Backup | undefined {
  return backups.find((b) => b.schema <= maxSchema);
}

/**
 * Deletes the backups in `root` beyond the newest `keep`, except the newest of each schema
 * version, and partial copies older than an hour; resolves to the directories deleted.
 */
export async function pruneBackups(root: string, keep = KEEP_BACKUPS): Promise<string[]> {
  const backups = await listBackups(root);
  const newestOf = new Set<number>();
  const removed: string[] = [];
  for (const [i, b] of backups.entries()) {
    const first = !newestOf.has(b.schema);
    newestOf.add(b.schema);
    if (i < keep || first) continue;
    await Deno.remove(b.dir, { recursive: true });
    removed.push(b.dir);
  }
  try {
    for await (const e of Deno.readDir(root)) {
      if (!e.name.startsWith(".partial-")) continue;
      const path = join(root, e.name);
      const st = await Deno.stat(path);
      if (Date.now() - (st.mtime?.getTime() ?? 0) > STALE_PARTIAL_MS) {
        await Deno.remove(path, { recursive: true });
        removed.push(path);
      }
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return removed;
}

/** The local database file of a `--data` value. */
async function localFile(what: string, data: string): Promise<string> {
  if (data === ":memory:" || isKvUrl(data)) {
    throw new Error(`Cannot ${what} ${data}: only a store in a local file can be`);
  }
  return resolve(await kvLocation(data));
}

/** Options of {@linkcode prepareStore}. */
export interface PrepareOptions {
  /** The `--data` value `kv` was opened from. */
  readonly location: string;
  /** Gets the backup and migration records. */
  readonly logger: Logger;
  /** The gateway version (written into the schema mark). */
  readonly writtenBy: string;
  /** When (the backup's time). @default now */
  readonly now?: () => Date;
}

/** What {@linkcode prepareStore} did. */
export interface Prepared {
  /** The schema version found. */
  readonly from: number;
  /** The backup made before migrating, if any. */
  readonly backup?: Backup;
  /** The migration steps run. */
  readonly migrations: readonly MigrationReport[];
}

/**
 * Makes the open store `kv` current: refuses a newer one, backs an older one up into
 * `<data>/backup/` and migrates it (pruning old backups), marks a new one. The caller holds the
 * store's lock (a migration must not run under another gateway).
 *
 * @throws {StoreVersionError} for a store newer than {@linkcode LATEST_SCHEMA}.
 */
export async function prepareStore(kv: Deno.Kv, options: PrepareOptions): Promise<Prepared> {
  const schema = await readSchema(kv);
  const local = options.location !== ":memory:" && !isKvUrl(options.location);
  const file = local ? resolve(await kvLocation(options.location)) : options.location;
  if (schema.version > LATEST_SCHEMA) {
    const root = local ? backupRoot(file) : undefined;
    const fit = root ? pickBackup(await listBackups(root), LATEST_SCHEMA) : undefined;
    throw new StoreVersionError(
      tooNewMessage(file, schema, LATEST_SCHEMA, {
        ...(fit ? { backup: fit.dir } : root ? { root } : {}),
      }),
      schema.version,
      LATEST_SCHEMA,
    );
  }
  let backup: Backup | undefined;
  if (!schema.empty && schema.version < LATEST_SCHEMA) {
    if (local) {
      const t0 = performance.now();
      backup = await backupStore(kv, {
        source: file,
        root: backupRoot(file),
        reason: `before migrating to schema ${LATEST_SCHEMA}`,
        now: options.now?.() ?? new Date(),
        schema,
      });
      options.logger.info("store backed up before migrating", {
        dir: backup.dir,
        schema: backup.schema,
        entries: backup.entries,
        ms: Math.round(performance.now() - t0),
      });
    } else {
      options.logger.warn("store migrated without a backup: it is not a local file", {
        location: options.location,
      });
    }
  }
  const migrations = await migrate(kv, { logger: options.logger, writtenBy: options.writtenBy });
  if (backup) await pruneBackups(backupRoot(file));
  return { from: schema.version, ...(backup ? { backup } : {}), migrations };
}

/** What {@linkcode restoreStore} did. */
export interface Restored {
  /** The backup (or store file) restored. */
  readonly from: string;
  /** Its schema version. */
  readonly schema: number;
  /** Entries restored. */
  readonly entries: number;
  /** The backup of the store it replaced (none when there was none or it was empty). */
  readonly saved?: Backup;
}

/** Options of {@linkcode restoreStore}. */
export interface RestoreOptions {
  /** When (the saved backup's time). @default now */
  readonly now?: Date;
}

/** The database file of a backup, a copied data directory, or a KV file. */
async function sourceFile(from: string): Promise<string> {
  const path = resolve(from);
  let st: Deno.FileInfo;
  try {
    st = await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(`Cannot restore from ${from}: no such file or directory`);
    }
    throw e;
  }
  if (st.isFile) return path;
  const file = join(path, BACKUP_KV);
  if (!(await exists(file))) {
    throw new Error(`Cannot restore from ${from}: no ${BACKUP_KV} in it (not a backup directory)`);
  }
  return file;
}

/**
 * Replaces the store of `data` with the backup in `from` (a backup directory, a copied data
 * directory or a `.kv` file). Takes the store's lock, so it refuses while a gateway runs on the
 * store; backs the current store up first (reason `before restore`); copies the backup into a
 * new file and renames it over `gateway.kv`.
 *
 * @throws {Error} "Cannot restore …: detail": the store is locked or open elsewhere, the backup
 *   is missing, empty or of a schema newer than this gateway knows.
 */
export async function restoreStore(
  data: string,
  from: string,
  options: RestoreOptions = {},
): Promise<Restored> {
  const file = await localFile("restore into", data);
  const src = await sourceFile(from);
  if (src === file) throw new Error(`Cannot restore from ${from}: it is the store itself`);
  let lock;
  try {
    lock = await lockStore(data);
  } catch (e) {
    throw new Error(
      `Cannot restore into ${file}: ${
        e instanceof Error ? e.message.replace(/^Cannot lock the store [^:]*: /, "") : String(e)
      } (systemctl stop intercom-gateway)`,
      { cause: e },
    );
  }
  try {
    const source = await Deno.openKv(src);
    try {
      const schema = await readSchema(source);
      if (schema.empty) throw new Error(`Cannot restore from ${from}: it holds no entries`);
      if (schema.version > LATEST_SCHEMA) {
        throw new StoreVersionError(
          `Cannot restore from ${from}: it has schema version ${schema.version}, this gateway ` +
            `knows up to ${LATEST_SCHEMA}; restore it with the newer gateway`,
          schema.version,
          LATEST_SCHEMA,
        );
      }
      let saved: Backup | undefined;
      if (await exists(file)) {
        const current = await Deno.openKv(file);
        try {
          const s = await readSchema(current);
          if (!s.empty) {
            saved = await backupStore(current, {
              source: file,
              root: backupRoot(file),
              reason: "before restore",
              ...(options.now ? { now: options.now } : {}),
              schema: s,
            });
          }
        } finally {
          current.close();
        }
      }
      // SQLite removes the WAL when the last connection closes: if it is still there, another
      // process (a 0.1.0 gateway takes no lock, or a command) has the store open.
      for (const f of [`${file}-wal`, `${file}-shm`]) {
        if (await exists(f)) {
          throw new Error(
            `Cannot restore into ${file}: another process has it open (${f} exists); stop the gateway and try again`,
          );
        }
      }
      const temp = `${file}.restoring`;
      const entries = await copyStore(source, temp);
      await Deno.rename(temp, file);
      await pruneBackups(backupRoot(file));
      return { from: resolve(from), schema: schema.version, entries, ...(saved ? { saved } : {}) };
    } finally {
      source.close();
    }
  } finally {
    lock?.release();
  }
}

/** What {@linkcode rollbackStore} did. */
export type RolledBack =
  | { readonly restored: false; readonly schema: number; readonly reason: string }
  | ({ readonly restored: true } & Restored);

/**
 * For a rollback to a gateway that knows up to schema `maxSchema`: when the store is newer,
 * restores the newest backup in `<data>/backup` it can open; else changes nothing.
 *
 * @throws {Error} "Cannot roll the store back …" when no such backup exists.
 */
export async function rollbackStore(
  data: string,
  maxSchema: number,
  options: RestoreOptions = {},
): Promise<RolledBack> {
  const file = await localFile("roll back", data);
  let version = 0;
  if (await exists(file)) {
    const kv = await Deno.openKv(file);
    try {
      version = (await readSchema(kv)).version;
    } finally {
      kv.close();
    }
  }
  if (version <= maxSchema) {
    return {
      restored: false,
      schema: version,
      reason:
        `the store has schema version ${version}, which a gateway knowing up to ${maxSchema} opens`,
    };
  }
  const fit = pickBackup(await listBackups(backupRoot(file)), maxSchema);
  if (!fit) {
    throw new Error(
      `Cannot roll the store back to schema ${maxSchema}: no backup of version ${maxSchema} or ` +
        `older in ${backupRoot(file)}`,
    );
  }
  return { restored: true, ...(await restoreStore(data, fit.dir, options)) };
}
