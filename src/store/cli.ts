/**
 * The store's command line: `bind add|list|remove|import` and `calls`.
 *
 * Output is JSON lines on stdout; errors are one line on stderr. Exit codes: 0 done, 1 nothing
 * done (`bind remove` found no binding) or the store failed, 2 a bad flag or value.
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
import { openStore } from "./kv.ts";
import { MAX_LIST_LIMIT, RecordStore } from "./records.ts";
import { eprintln, println } from "../print.ts";

/** Where {@linkcode storeCommand} writes and what environment it reads. */
export interface StoreIo {
  /** Writes one stdout line. @default stdout */
  readonly out?: (line: string) => void;
  /** Writes one stderr line. @default stderr */
  readonly err?: (line: string) => void;
  /** The environment (for `INTERCOM_DATA`). @default the process environment */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/** The data directory when neither `--data` nor `INTERCOM_DATA` is given. */
export const DEFAULT_DATA = "./data";

/** Usage of `bind`. */
export const BIND_USAGE = `Usage:
  bind add --uid UID --room ROOM [--community NAME] [--data DIR]
      bind a phone to a room; prints the binding with its new token (re-adding rotates it)
  bind list [--room ROOM] [--uid UID] [--data DIR]
      print bindings as JSON lines (never tokens)
  bind remove --uid UID [--room ROOM] [--data DIR]
      remove one binding, or all of the uid's; exit 1 when none existed
  bind import FILE.json [--data DIR]
      bind every {uid, room|roomAddress, community} of a JSON array; prints the tokens

ROOM is a room address (a letter and 11 digits, e.g. Y00010108090); list and remove also take
the bare 11 digits. DIR defaults to $INTERCOM_DATA, else ${DEFAULT_DATA}.`;

/** Usage of `calls`. */
export const CALLS_USAGE = `Usage:
  calls [--limit N] [--data DIR]             recent call records, newest first, as JSON lines
  calls --unlocks [--limit N] [--data DIR]   recent unlock attempts (the audit log)

N defaults to 20. DIR defaults to $INTERCOM_DATA, else ${DEFAULT_DATA}.`;

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
      throw new UsageError("Cannot run bind: expected add, list, remove or import (bind --help)");
    case "--help":
    case "-h":
    case "help":
      return usage(out, BIND_USAGE);
    case "add": {
      const { values } = parse("bind add", rest, {
        uid: { type: "string" },
        room: { type: "string" },
        community: { type: "string" },
      });
      if (values.help) return usage(out, BIND_USAGE);
      const uid = checkUid(values, true)!;
      const roomAddress = checkRoom(values, { required: true, bareKey: false })!;
      const community = str(values, "community") ?? "";
      const problem = communityProblem(community);
      if (problem) throw flagError("community", community, problem);
      const dir = dataDir(values, io);
      const { binding, token, rotated } = await withStore(
        dir,
        (kv) => new BindingStore(kv).add({ uid, roomAddress, community }),
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
      });
      if (values.help) return usage(out, BIND_USAGE);
      const uid = checkUid(values, true)!;
      const room = checkRoom(values, { required: false, bareKey: true });
      const dir = dataDir(values, io);
      const removed = await withStore(dir, (kv) => new BindingStore(kv).remove(uid, room));
      out(JSON.stringify({ removed }));
      return removed > 0 ? 0 : 1;
    }
    case "import": {
      const { values, positionals } = parse("bind import", rest, {}, 1);
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
      const dir = dataDir(values, io);
      let results;
      try {
        results = await withStore(dir, (kv) => new BindingStore(kv).import(entries));
      } catch (e) {
        if (e instanceof TypeError) throw new UsageError(`${file}: ${e.message}`);
        throw e;
      }
      for (const r of results) out(bindingLine(r.binding, r.token, r.rotated));
      return 0;
    }
    default:
      throw new UsageError(
        `Cannot run bind ${
          JSON.stringify(sub)
        }: expected add, list, remove or import (bind --help)`,
      );
  }
}

async function calls(args: string[], io: StoreIo, out: (line: string) => void): Promise<number> {
  if (args[0] === "help") return usage(out, CALLS_USAGE);
  const { values } = parse("calls", args, {
    limit: { type: "string" },
    unlocks: { type: "boolean" },
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
  const lines = await withStore(dir, async (kv) => {
    const store = new RecordStore(kv);
    const list = values.unlocks ? await store.recentUnlocks(limit) : await store.recent(limit);
    return list.map((r) => JSON.stringify(r));
  });
  for (const line of lines) out(line);
  return 0;
}

/**
 * Runs `bind …` or `calls …` and resolves to the exit code: 0 done, 1 `bind remove` removed
 * nothing or the store failed, 2 a bad flag or value (one line on stderr naming it).
 */
export async function storeCommand(
  cmd: "bind" | "calls",
  args: string[],
  io: StoreIo = {},
): Promise<number> {
  const out = io.out ?? println;
  const err = io.err ?? eprintln;
  try {
    return cmd === "bind" ? await bind(args, io, out) : await calls(args, io, out);
  } catch (e) {
    err(e instanceof Error ? e.message : String(e));
    return e instanceof UsageError ? 2 : 1;
  }
}
