/**
 * The store's command line: `bind add|list|remove|import|export`, `door list|forget|pin`,
 * `calls`, for upgrades and moves `backup [list]`, `restore`, `migrate` and `schema`, and
 * `admin add|list|remove|reset` (console accounts).
 *
 * Output is JSON lines on stdout; errors, and the one line saying a listing is empty, go to
 * stderr (so that stdout stays JSON lines). Exit codes: 0 done, 1 nothing done (`bind remove`
 * found no binding, `door forget` or `door pin` no door) or the store failed, 2 a bad flag or
 * value.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  type Binding,
  BindingStore,
  communityProblem,
  isRoomAddress,
  toRoomKey,
  uidProblem,
} from "./bindings.ts";
import { isKvUrl, kvLocation, openStore } from "./kv.ts";
import {
  backupRoot,
  backupStore,
  listBackups,
  prepareStore,
  pruneBackups,
  restoreStore,
  rollbackStore,
} from "./backup.ts";
import { lockStore } from "./lock.ts";
import { LATEST_SCHEMA } from "./migrations.ts";
import { readSchema } from "./schema.ts";
import { createLogger } from "../log.ts";
import denoJson from "../../deno.json" with { type: "json" };
import { DEFAULT_DATA } from "../config.ts";
import { MAX_LIST_LIMIT, RecordStore } from "./records.ts";
import { doorAddressProblem, DoorStore } from "./doors.ts";
import type { DoorRecord } from "../door/registry.ts";
import { eprintln, println } from "../print.ts";
import { fetchCommunityRecords, withSharedBindings } from "../cluster/cli_link.ts";
import { type AdminAccount, adminNameProblem, AdminStore, MAX_PASSWORD_LENGTH } from "./admins.ts";

/** Where {@linkcode storeCommand} writes and what environment it reads. */
export interface StoreIo {
  /** Writes one stdout line. @default stdout */
  readonly out?: (line: string) => void;
  /** Writes one stderr line. @default stderr */
  readonly err?: (line: string) => void;
  /** The environment (for `INTERCOM_DATA`). @default the process environment */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Reads all of stdin (`--password-stdin`). @default the process's stdin */
  readonly stdin?: () => Promise<string>;
}

/** Usage of `bind`. */
export const BIND_USAGE = `Usage:
  bind add --uid UID --room ROOM [--community NAME] [--data DIR] [--cluster URL]
      bind a phone to a room; prints the binding with its new token (re-adding rotates it)
  bind list [--room ROOM] [--uid UID] [--data DIR]
      print bindings as JSON lines (never tokens)
  bind remove --uid UID [--room ROOM] [--data DIR] [--cluster URL]
      remove one binding, or all of the uid's; exit 1 when none existed
  bind import FILE.json [--data DIR] [--cluster URL]
      bind every {uid, room|roomAddress, community[, createdAt][, tokenHash]} of a JSON array;
      prints the new tokens (an entry with tokenHash keeps the phone's token: none printed)
  bind export [--room ROOM] [--uid UID] [--with-token-hashes] [--data DIR]
      print the bindings as a JSON array that bind import reads; --with-token-hashes adds each
      token's hash, so that the phones keep working after an import on another box (tokens are
      not stored, only their hashes; keep such a file as safe as the store)

ROOM is a room address (a letter and 11 digits, e.g. Y00010108090); list and remove also take
the bare 11 digits. DIR defaults to $INTERCOM_DATA, else ${DEFAULT_DATA}.

Several gateways (--cluster nats://127.0.0.1:4222, or $INTERCOM_CLUSTER): add, remove and
import write to the community's hub through this box's leaf node, and fail when the hub is
unreachable; every gateway gets the change (list and export show this box's copy).`;

/** Usage of `calls`. */
export const CALLS_USAGE = `Usage:
  calls [--limit N] [--data DIR] [--cluster URL]
                                             recent call records, newest first, as JSON lines;
                                             with --cluster (or $INTERCOM_CLUSTER) the whole
                                             community's from the hub, else this gateway's
  calls --unlocks [--limit N] [--data DIR]   recent unlock attempts (the audit log); "count" is
                                             how many attempts a line stands for: refused ones
                                             (not_bound, not_in_call, rate_limited) are counted
                                             per uid, result and minute, from "at" to "lastAt"

N defaults to 20. DIR defaults to $INTERCOM_DATA, else ${DEFAULT_DATA}.`;

/** Usage of `door`. */
export const DOOR_USAGE = `Usage:
  door list [--data DIR]
      print the stored doors as JSON lines: address, ip, mode (learned or pinned), firstHeard,
      lastHeard, headerForm (77 or 86), law (alaw or ulaw), needsTalkForUnlock; null: not known
  door forget ADDR [--data DIR]
      forget a door (a replaced or removed unit): it is learned afresh on its next contact;
      exit 1 when no such door
  door pin ADDR|--all [--data DIR]
      pin learned doors to their IP (fixed ADDR=IP, the safe mode): they never move again until
      forgotten; prints the pinned doors

A running gateway applies forget and pin within a second. A learned door that speaks from a new
IP takes it once its old IP has been silent for the gateway's --door-relearn-after; pinned doors
and --door-allowlist ADDR=IP entries never move (allowlist entries are listed once heard).
ADDR is a door address, e.g. M00010100 or S00010108090. DIR defaults to $INTERCOM_DATA, else
${DEFAULT_DATA}.`;

/** Usage of `backup`, `restore`, `migrate` and `schema`. */
export const BACKUP_USAGE = `Usage:
  backup [--to DIR] [--data DIR]
      copy the store (also while the gateway runs) into DIR, default DATA/backup/<schema>-<time>/
      (the newest 5 there are kept, and the newest of each schema version); prints the backup
  backup list [--data DIR]
      the backups in DATA/backup as JSON lines, newest first
  restore DIR [--data DIR]
      replace the store with the backup in DIR (or a copied data directory, or a .kv file); the
      gateway must be stopped (refused while one runs on DATA: systemctl stop intercom-gateway);
      the current store is backed up first
  restore --schema N [--data DIR]
      for a rollback to a gateway that knows up to schema N (deploy/rollback.sh): if the store is
      newer, restore the newest backup in DATA/backup of version N or older; else nothing
  migrate [--data DIR]
      back the store up into DATA/backup and migrate it to schema ${LATEST_SCHEMA} (the gateway does
      this at start; the other commands refuse a store that is not migrated)
  schema [--known] [--data DIR]
      the store's schema version, this gateway's, and the backups; --known: only this gateway's

DIR defaults to $INTERCOM_DATA, else ${DEFAULT_DATA}.`;

/** Usage of `admin`. */
export const ADMIN_USAGE = `Usage:
  admin add --name NAME [--password-stdin] [--data DIR]
      create a console account; prints a one-time password (to be changed at the first login),
      or takes the password from the first line of stdin
  admin list [--data DIR]
      print the accounts as JSON lines (never passwords)
  admin remove --name NAME [--data DIR]
      delete an account; its console sessions end; exit 1 when no such account
  admin reset --name NAME [--password-stdin] [--data DIR]
      set a new password (one-time, or from stdin); the account's sessions end

The console is at /admin on the gateway's HTTPS port. Passwords are stored as PBKDF2-SHA-256
hashes (600,000 iterations). Every command here is in the console's audit (as "cli").
DIR defaults to $INTERCOM_DATA, else ${DEFAULT_DATA}.`;

/** A bad flag or value: exit 2. */
class UsageError extends Error {
  override name = "UsageError";
}

type Flags = Record<string, string | boolean | undefined>;

function parse(
  what: string,
  args: string[],
  options: Record<string, { type: "string" | "boolean"; short?: string }>,
  positionals = 0,
): { values: Flags; positionals: string[] } {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { ...options, data: { type: "string" }, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: positionals > 0,
    });
  } catch (e) {
    const message = (e instanceof Error ? e.message : String(e)).split("\n")[0]!;
    throw new UsageError(`Cannot run ${what}: ${message}`);
  }
  if (parsed.positionals.length > positionals) {
    throw new UsageError(
      `Cannot run ${what}: unexpected argument ${JSON.stringify(parsed.positionals[positionals])}`,
    );
  }
  return { values: parsed.values as Flags, positionals: parsed.positionals };
}

function usage(out: (line: string) => void, text: string): number {
  out(text);
  return 0;
}

function flagError(flag: string, value: unknown, why: string): UsageError {
  return new UsageError(`Cannot use --${flag}=${JSON.stringify(value)}: ${why}`);
}

function readEnv(name: string): string | undefined {
  try {
    if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") {
      return undefined;
    }
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

function dataDir(values: Flags, io: StoreIo): string {
  const flag = values.data;
  if (typeof flag === "string") {
    if (flag === "") throw flagError("data", flag, "empty");
    return flag;
  }
  const env = io.env ? io.env.INTERCOM_DATA : readEnv("INTERCOM_DATA");
  return env ? env : DEFAULT_DATA;
}

function str(values: Flags, flag: string): string | undefined {
  const v = values[flag];
  return typeof v === "string" ? v : undefined;
}

function checkUid(values: Flags, required: boolean): string | undefined {
  const uid = str(values, "uid");
  if (uid === undefined) {
    if (required) throw new UsageError("Cannot run bind: --uid is required");
    return undefined;
  }
  const problem = uidProblem(uid);
  if (problem) throw flagError("uid", uid, problem);
  return uid;
}

function checkRoom(
  values: Flags,
  opts: { required: boolean; bareKey: boolean },
): string | undefined {
  const room = str(values, "room");
  if (room === undefined) {
    if (opts.required) throw new UsageError("Cannot run bind: --room is required");
    return undefined;
  }
  const ok = opts.bareKey ? toRoomKey(room) !== undefined : isRoomAddress(room);
  if (!ok) {
    throw flagError(
      "room",
      room,
      `not a room address (a letter and 11 digits, e.g. Y00010108090${
        opts.bareKey ? ", or the 11 digits" : ""
      })`,
    );
  }
  return room;
}

/**
 * The binding store to change: with `--cluster URL` (or `INTERCOM_CLUSTER`), changes go to the
 * community's hub through this box's leaf node first (and fail when it is unreachable).
 */
async function withBindings<T>(
  values: Flags,
  io: StoreIo,
  fn: (store: BindingStore) => Promise<T>,
): Promise<T> {
  const dir = dataDir(values, io);
  const flag = str(values, "cluster");
  const url = flag ?? (io.env ? io.env.INTERCOM_CLUSTER : readEnv("INTERCOM_CLUSTER"));
  if (!url) return await withStore(dir, (kv) => fn(new BindingStore(kv)));
  if (!/^nats:\/\/[^/]+$/.test(url)) {
    throw flagError("cluster", url, "not a nats://HOST:PORT URL (this box's leaf node)");
  }
  return await withSharedBindings(
    url,
    (shared) => withStore(dir, (kv) => fn(new BindingStore(kv, undefined, shared))),
  );
}

async function withStore<T>(dir: string, fn: (kv: Deno.Kv) => Promise<T>): Promise<T> {
  const kv = await openStore(dir);
  try {
    return await fn(kv);
  } finally {
    kv.close();
  }
}

function bindingLine(b: Binding, token?: string, rotated?: boolean): string {
  const line: Record<string, unknown> = {
    uid: b.uid,
    roomAddress: b.roomAddress,
    roomKey: b.roomKey,
    community: b.community,
  };
  if (token !== undefined) line.token = token;
  line.createdAt = b.createdAt;
  if (rotated !== undefined) line.rotated = rotated;
  return JSON.stringify(line);
}

async function bind(args: string[], io: StoreIo, out: (line: string) => void): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case undefined:
      throw new UsageError(
        "Cannot run bind: expected add, list, remove, import or export (bind --help)",
      );
    case "--help":
    case "-h":
    case "help":
      return usage(out, BIND_USAGE);
    case "add": {
      const { values } = parse("bind add", rest, {
        uid: { type: "string" },
        room: { type: "string" },
        community: { type: "string" },
        cluster: { type: "string" },
      });
      if (values.help) return usage(out, BIND_USAGE);
      const uid = checkUid(values, true)!;
      const roomAddress = checkRoom(values, { required: true, bareKey: false })!;
      const community = str(values, "community") ?? "";
      const problem = communityProblem(community);
      if (problem) throw flagError("community", community, problem);
      const { binding, token, rotated } = await withBindings(
        values,
        io,
        (store) => store.add({ uid, roomAddress, community }),
      );
      out(bindingLine(binding, token, rotated));
      return 0;
    }
    case "list": {
      const { values } = parse("bind list", rest, {
        uid: { type: "string" },
        room: { type: "string" },
      });
      if (values.help) return usage(out, BIND_USAGE);
      const uid = checkUid(values, false);
      const room = checkRoom(values, { required: false, bareKey: true });
      const dir = dataDir(values, io);
      const list = await withStore(dir, (kv) => {
        const filter: { uid?: string; room?: string } = {};
        if (uid !== undefined) filter.uid = uid;
        if (room !== undefined) filter.room = room;
        return new BindingStore(kv).list(filter);
      });
      for (const b of list) out(bindingLine(b));
      return 0;
    }
    case "remove": {
      const { values } = parse("bind remove", rest, {
        uid: { type: "string" },
        room: { type: "string" },
        cluster: { type: "string" },
      });
      if (values.help) return usage(out, BIND_USAGE);
      const uid = checkUid(values, true)!;
      const room = checkRoom(values, { required: false, bareKey: true });
      const removed = await withBindings(values, io, (store) => store.remove(uid, room));
      out(JSON.stringify({ removed }));
      return removed > 0 ? 0 : 1;
    }
    case "import": {
      const { values, positionals } = parse("bind import", rest, {
        cluster: { type: "string" },
      }, 1);
      if (values.help) return usage(out, BIND_USAGE);
      const file = positionals[0];
      if (file === undefined) throw new UsageError("Cannot run bind import: expected FILE.json");
      let entries: unknown;
      try {
        entries = JSON.parse(await Deno.readTextFile(file));
      } catch (e) {
        throw new UsageError(
          `Cannot import ${file}: ${(e instanceof Error ? e.message : String(e)).split("\n")[0]}`,
        );
      }
      if (!Array.isArray(entries)) {
        throw new UsageError(`Cannot import ${file}: expected a JSON array of bindings`);
      }
      let results;
      try {
        results = await withBindings(values, io, (store) => store.import(entries));
      } catch (e) {
        if (e instanceof TypeError) throw new UsageError(`${file}: ${e.message}`);
        throw e;
      }
      for (const r of results) out(bindingLine(r.binding, r.token, r.rotated));
      return 0;
    }
    case "export": {
      const { values } = parse("bind export", rest, {
        uid: { type: "string" },
        room: { type: "string" },
        "with-token-hashes": { type: "boolean" },
      });
      if (values.help) return usage(out, BIND_USAGE);
      const uid = checkUid(values, false);
      const room = checkRoom(values, { required: false, bareKey: true });
      const dir = dataDir(values, io);
      const entries = await withStore(dir, (kv) => {
        const filter: { uid?: string; room?: string } = {};
        if (uid !== undefined) filter.uid = uid;
        if (room !== undefined) filter.room = room;
        return new BindingStore(kv).export(filter, {
          withTokenHashes: values["with-token-hashes"] === true,
        });
      });
      out(JSON.stringify(entries, null, 2));
      return 0;
    }
    default:
      throw new UsageError(
        `Cannot run bind ${
          JSON.stringify(sub)
        }: expected add, list, remove, import or export (bind --help)`,
      );
  }
}

async function calls(
  args: string[],
  io: StoreIo,
  out: (line: string) => void,
  err: (line: string) => void,
): Promise<number> {
  if (args[0] === "help") return usage(out, CALLS_USAGE);
  const { values } = parse("calls", args, {
    limit: { type: "string" },
    unlocks: { type: "boolean" },
    cluster: { type: "string" },
  });
  if (values.help) return usage(out, CALLS_USAGE);
  let limit = 20;
  const raw = str(values, "limit");
  if (raw !== undefined) {
    limit = Number(raw);
    if (!/^\d+$/.test(raw) || limit < 1 || limit > MAX_LIST_LIMIT) {
      throw flagError("limit", raw, `not an integer 1-${MAX_LIST_LIMIT}`);
    }
  }
  const dir = dataDir(values, io);
  const url = str(values, "cluster") ??
    (io.env ? io.env.INTERCOM_CLUSTER : readEnv("INTERCOM_CLUSTER"));
  if (url) {
    // Several gateways: the whole community from the hub, else this gateway's part, saying so.
    try {
      const all = await fetchCommunityRecords(url, values.unlocks ? "unlock" : "call", limit);
      for (const r of all) {
        const record = r.record as Record<string, unknown>;
        out(
          JSON.stringify({
            gateway: r.gateway,
            ...record,
            ...(r.kind === "unlock" ? { count: record.count ?? 1 } : {}),
          }),
        );
      }
      const gateways = new Set(all.map((r) => r.gateway)).size;
      err(`community: ${all.length} records from ${gateways} gateway(s), from the hub`);
      return 0;
    } catch (e) {
      err(
        `showing this gateway's records only: the community hub is unreachable (${
          e instanceof Error ? e.message : String(e)
        })`,
      );
    }
  }
  const lines = await withStore(dir, async (kv) => {
    const store = new RecordStore(kv);
    if (values.unlocks) {
      return (await store.recentUnlocks(limit)).map((r) =>
        JSON.stringify({ ...r, count: r.count ?? 1 })
      );
    }
    return (await store.recent(limit)).map((r) => JSON.stringify(r));
  });
  for (const line of lines) out(line);
  if (lines.length === 0) err(values.unlocks ? "no unlock attempts recorded" : "no calls recorded");
  return 0;
}

function iso(ms: number | undefined): string | null {
  return ms === undefined ? null : new Date(ms).toISOString();
}

function doorLine(r: DoorRecord): string {
  return JSON.stringify({
    address: r.address,
    ip: r.ip,
    mode: r.mode,
    firstHeard: iso(r.firstHeard),
    lastHeard: iso(r.lastHeard),
    headerForm: r.headerForm ?? null,
    law: r.law ?? null,
    needsTalkForUnlock: r.needsTalkForUnlock,
  });
}

function doorAddress(what: string, positionals: string[]): string {
  const address = positionals[0];
  if (address === undefined) throw new UsageError(`Cannot run ${what}: expected ADDR`);
  const problem = doorAddressProblem(address);
  if (problem) throw new UsageError(`Cannot use ADDR ${JSON.stringify(address)}: ${problem}`);
  return address;
}

async function door(
  args: string[],
  io: StoreIo,
  out: (line: string) => void,
  err: (line: string) => void,
): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case undefined:
      throw new UsageError("Cannot run door: expected list, forget or pin (door --help)");
    case "--help":
    case "-h":
    case "help":
      return usage(out, DOOR_USAGE);
    case "list": {
      const { values } = parse("door list", rest, {});
      if (values.help) return usage(out, DOOR_USAGE);
      const doors = await withStore(dataDir(values, io), (kv) => new DoorStore(kv).list());
      for (const r of doors) out(doorLine(r));
      if (doors.length === 0) err("no doors recorded");
      return 0;
    }
    case "forget": {
      const { values, positionals } = parse("door forget", rest, {}, 1);
      if (values.help) return usage(out, DOOR_USAGE);
      const address = doorAddress("door forget", positionals);
      const forgotten = await withStore(
        dataDir(values, io),
        (kv) => new DoorStore(kv).forget(address),
      );
      out(JSON.stringify({ forgotten: forgotten ? 1 : 0 }));
      return forgotten ? 0 : 1;
    }
    case "pin": {
      const { values, positionals } = parse("door pin", rest, { all: { type: "boolean" } }, 1);
      if (values.help) return usage(out, DOOR_USAGE);
      if ((values.all === true) === (positionals.length > 0)) {
        throw new UsageError("Cannot run door pin: expected ADDR or --all (one of them)");
      }
      const address = values.all ? undefined : doorAddress("door pin", positionals);
      const { doors } = await withStore(
        dataDir(values, io),
        (kv) => new DoorStore(kv).pin(address),
      );
      for (const r of doors) out(doorLine(r));
      if (doors.length > 0) return 0;
      err(address === undefined ? "no doors recorded" : `Cannot pin door ${address}: no such door`);
      return 1;
    }
    default:
      throw new UsageError(
        `Cannot run door ${JSON.stringify(sub)}: expected list, forget or pin (door --help)`,
      );
  }
}

/** The database file of a local store, or a usage error naming `what`. */
async function localStoreFile(what: string, dir: string): Promise<string> {
  if (dir === ":memory:" || isKvUrl(dir)) {
    throw new UsageError(`Cannot run ${what}: --data ${dir} is not a local store`);
  }
  return await kvLocation(dir);
}

async function fileExists(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

async function backup(args: string[], io: StoreIo, out: (line: string) => void): Promise<number> {
  if (args[0] === "help") return usage(out, BACKUP_USAGE);
  if (args[0] === "list") {
    const { values } = parse("backup list", args.slice(1), {});
    if (values.help) return usage(out, BACKUP_USAGE);
    const file = await localStoreFile("backup list", dataDir(values, io));
    for (const b of await listBackups(backupRoot(file))) out(JSON.stringify(b));
    return 0;
  }
  const { values } = parse("backup", args, { to: { type: "string" } });
  if (values.help) return usage(out, BACKUP_USAGE);
  const to = str(values, "to");
  if (to === "") throw flagError("to", to, "empty");
  const dir = dataDir(values, io);
  const file = await localStoreFile("backup", dir);
  if (!(await fileExists(file))) throw new Error(`Cannot back up ${dir}: no store there (${file})`);
  const kv = await openStore(dir, { schema: "any" });
  let made;
  try {
    made = await backupStore(kv, {
      source: file,
      reason: "manual",
      ...(to !== undefined ? { to } : { root: backupRoot(file) }),
    });
  } finally {
    kv.close();
  }
  if (to === undefined) await pruneBackups(backupRoot(file));
  out(JSON.stringify(made));
  return 0;
}

async function restore(args: string[], io: StoreIo, out: (line: string) => void): Promise<number> {
  if (args[0] === "help") return usage(out, BACKUP_USAGE);
  const { values, positionals } = parse("restore", args, { schema: { type: "string" } }, 1);
  if (values.help) return usage(out, BACKUP_USAGE);
  const dir = dataDir(values, io);
  await localStoreFile("restore", dir);
  const raw = str(values, "schema");
  if ((raw !== undefined) === (positionals.length > 0)) {
    throw new UsageError("Cannot run restore: expected DIR or --schema N (one of them)");
  }
  if (raw !== undefined) {
    const n = Number(raw);
    if (!/^\d+$/.test(raw) || n < 1) {
      throw flagError("schema", raw, "not a schema version (1, 2, …)");
    }
    out(JSON.stringify(await rollbackStore(dir, n)));
    return 0;
  }
  out(JSON.stringify({ restored: true, ...(await restoreStore(dir, positionals[0]!)) }));
  return 0;
}

async function migrateCommand(
  args: string[],
  io: StoreIo,
  out: (line: string) => void,
  err: (line: string) => void,
): Promise<number> {
  if (args[0] === "help") return usage(out, BACKUP_USAGE);
  const { values } = parse("migrate", args, {});
  if (values.help) return usage(out, BACKUP_USAGE);
  const dir = dataDir(values, io);
  const lock = await lockStore(dir);
  try {
    const kv = await openStore(dir, { schema: "any" });
    try {
      const done = await prepareStore(kv, {
        location: dir,
        logger: createLogger({ level: "info", format: "text", sink: err }),
        writtenBy: denoJson.version,
      });
      out(JSON.stringify({
        from: done.from,
        to: LATEST_SCHEMA,
        backup: done.backup?.dir ?? null,
        migrations: done.migrations,
      }));
    } finally {
      kv.close();
    }
  } finally {
    lock?.release();
  }
  return 0;
}

async function schema(args: string[], io: StoreIo, out: (line: string) => void): Promise<number> {
  if (args[0] === "help") return usage(out, BACKUP_USAGE);
  const { values } = parse("schema", args, { known: { type: "boolean" } });
  if (values.help) return usage(out, BACKUP_USAGE);
  if (values.known) {
    out(String(LATEST_SCHEMA));
    return 0;
  }
  const dir = dataDir(values, io);
  const local = dir !== ":memory:" && !isKvUrl(dir);
  const file = local ? await kvLocation(dir) : dir;
  let stored: { version: number; writtenBy: string | null } | null = null;
  if (!local || await fileExists(file)) {
    const kv = await openStore(dir, { schema: "any" });
    try {
      const s = await readSchema(kv);
      if (!s.empty) stored = { version: s.version, writtenBy: s.writtenBy ?? null };
    } finally {
      kv.close();
    }
  }
  const backups = local ? await listBackups(backupRoot(file)) : [];
  out(JSON.stringify({
    gateway: denoJson.version,
    known: LATEST_SCHEMA,
    store: stored?.version ?? null,
    writtenBy: stored?.writtenBy ?? null,
    file,
    backups: backups.map((b) => ({ dir: b.dir, schema: b.schema, createdAt: b.createdAt })),
  }));
  return 0;
}

async function readStdin(io: StoreIo): Promise<string> {
  if (io.stdin) return await io.stdin();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of Deno.stdin.readable) {
    chunks.push(chunk);
    size += chunk.length;
    if (size > 4 * MAX_PASSWORD_LENGTH) break;
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  return new TextDecoder().decode(all);
}

function adminLine(a: AdminAccount, password?: string): string {
  return JSON.stringify({
    name: a.name,
    createdAt: a.createdAt,
    passwordSetAt: a.passwordSetAt,
    mustChange: a.mustChange,
    ...(password !== undefined ? { password } : {}),
  });
}

function adminName(values: Flags): string {
  const name = str(values, "name");
  if (name === undefined) throw new UsageError("Cannot run admin: --name is required");
  const problem = adminNameProblem(name);
  if (problem) throw flagError("name", name, problem);
  return name;
}

async function admin(
  args: string[],
  io: StoreIo,
  out: (line: string) => void,
  err: (line: string) => void,
): Promise<number> {
  const [sub, ...rest] = args;
  const audit = (store: AdminStore, action: string, target: string) =>
    store.audit({ admin: "cli", action, target, ip: "local" });
  switch (sub) {
    case undefined:
      throw new UsageError("Cannot run admin: expected add, list, remove or reset (admin --help)");
    case "--help":
    case "-h":
    case "help":
      return usage(out, ADMIN_USAGE);
    case "add":
    case "reset": {
      const { values } = parse(`admin ${sub}`, rest, {
        name: { type: "string" },
        "password-stdin": { type: "boolean" },
      });
      if (values.help) return usage(out, ADMIN_USAGE);
      const name = adminName(values);
      const password = values["password-stdin"]
        ? (await readStdin(io)).split(/\r?\n/)[0]!
        : undefined;
      const dir = dataDir(values, io);
      const result = await withStore(dir, async (kv) => {
        const store = new AdminStore(kv);
        try {
          const r = sub === "add"
            ? await store.add(name, password)
            : await store.setPassword(name, password);
          await audit(store, sub === "add" ? "admin_add" : "admin_reset", name);
          return r;
        } catch (e) {
          if (e instanceof TypeError) throw new UsageError(e.message);
          throw e;
        }
      });
      out(adminLine(result.account, result.generated ? result.password : undefined));
      if (result.generated) {
        err(`one-time password for ${name} (shown once; to be changed at the first login)`);
      }
      return 0;
    }
    case "list": {
      const { values } = parse("admin list", rest, {});
      if (values.help) return usage(out, ADMIN_USAGE);
      const list = await withStore(dataDir(values, io), (kv) => new AdminStore(kv).list());
      for (const a of list) out(adminLine(a));
      if (list.length === 0) err("no admin accounts");
      return 0;
    }
    case "remove": {
      const { values } = parse("admin remove", rest, { name: { type: "string" } });
      if (values.help) return usage(out, ADMIN_USAGE);
      const name = adminName(values);
      const removed = await withStore(dataDir(values, io), async (kv) => {
        const store = new AdminStore(kv);
        const done = await store.remove(name);
        if (done) await audit(store, "admin_remove", name);
        return done;
      });
      out(JSON.stringify({ removed: removed ? 1 : 0 }));
      return removed ? 0 : 1;
    }
    default:
      throw new UsageError(
        `Cannot run admin ${
          JSON.stringify(sub)
        }: expected add, list, remove or reset (admin --help)`,
      );
  }
}

/** The commands of {@linkcode storeCommand}. */
export type StoreCommandName =
  | "bind"
  | "calls"
  | "door"
  | "backup"
  | "restore"
  | "migrate"
  | "schema"
  | "admin";

/**
 * Runs `bind …`, `door …`, `calls …`, `backup …`, `restore …`, `migrate`, `schema` or `admin …`
 * and resolves to the exit code: 0 done, 1 nothing done
 * (`bind remove`, `door forget`, `door pin` found nothing) or the store failed, 2 a bad flag or
 * value (one line on stderr naming it).
 */
export async function storeCommand(
  cmd: StoreCommandName,
  args: string[],
  io: StoreIo = {},
): Promise<number> {
  const out = io.out ?? println;
  const err = io.err ?? eprintln;
  try {
    switch (cmd) {
      case "bind":
        return await bind(args, io, out);
      case "door":
        return await door(args, io, out, err);
      case "calls":
        return await calls(args, io, out, err);
      case "backup":
        return await backup(args, io, out);
      case "restore":
        return await restore(args, io, out);
      case "migrate":
        return await migrateCommand(args, io, out, err);
      case "schema":
        return await schema(args, io, out);
      case "admin":
        return await admin(args, io, out, err);
    }
  } catch (e) {
    err(e instanceof Error ? e.message : String(e));
    return e instanceof UsageError ? 2 : 1;
  }
}
