/**
 * Call records and the unlock audit, kept in Deno KV so that they survive restarts.
 *
 * KV layout:
 * - `["call", callId]` → {@linkcode CallRecord}
 * - `["call_by_time", ringAtMs, callId]` → `true` (index for {@linkcode RecordStore.recent})
 * - `["unlock_audit", atMs, id]` → {@linkcode UnlockAudit}
 *
 * Writes to one call are serialised per store instance and committed with a versionstamp check
 * (retried on conflict), so concurrent `update`/`addUnlock` calls, even from two processes
 * sharing the database, never lose each other's changes. Call
 * {@linkcode RecordStore.pruneOlderThan} periodically to keep the database bounded.
 *
 * @module
 */

import { roomKey as roomKeyOf } from "../protocol/address.ts";

/** Outcomes of an unlock attempt. */
export const UNLOCK_RESULTS = [
  "success",
  "fail",
  "not_bound",
  "not_in_call",
  "rate_limited",
  "door_timeout",
] as const;

/** An unlock outcome. */
export type UnlockResult = typeof UNLOCK_RESULTS[number];

/** One unlock attempt within a call. */
export interface UnlockEntry {
  /** The phone that asked. */
  readonly uid: string;
  /** When (ISO 8601). */
  readonly at: string;
  /** The outcome. */
  readonly result: UnlockResult;
  /** Details, e.g. why the door refused. */
  readonly reason?: string;
}

/** A door call as recorded. */
export interface CallRecord {
  /** The gateway's call id. */
  readonly callId: string;
  /** The calling door's address, e.g. `M00010100`. */
  readonly door: string;
  /** The door's IPv4. */
  readonly doorIp: string;
  /** The called room's address as the door sent it, e.g. `S00010108090`. */
  readonly roomAddress: string;
  /** The room's 11-digit key (empty when the address has none). */
  readonly roomKey: string;
  /** The community, when known. */
  readonly community?: string;
  /** When the door called (ISO 8601). */
  readonly ringAt: string;
  /** The first `call ok`. */
  readonly answeredAt?: string;
  /** When talking began. */
  readonly talkAt?: string;
  /** When the call ended. */
  readonly endedAt?: string;
  /** Why it ended, e.g. `door hung up`. */
  readonly endReason?: string;
  /** The uid that answered. */
  readonly answeredBy?: string;
  /** Unlock attempts during the call, oldest first (at most {@linkcode MAX_UNLOCKS_PER_CALL}). */
  readonly unlocks: readonly UnlockEntry[];
}

/** What {@linkcode RecordStore.start} needs; `roomKey` is derived and `ringAt` defaults to now. */
export interface CallStart {
  /** The gateway's call id. */
  readonly callId: string;
  /** The door's address. */
  readonly door: string;
  /** The door's IPv4. */
  readonly doorIp: string;
  /** The called room's address. */
  readonly roomAddress: string;
  /** The community, when known. */
  readonly community?: string;
  /** When the door called (ISO 8601); default now. */
  readonly ringAt?: string;
}

/**
 * Changes to a call. `answeredAt`, `answeredBy`, `talkAt`, `endedAt` and `endReason` are set
 * once: the first value written stays (first `call ok`, first `talk`, first end win), so
 * callers may send them on every event without checking.
 */
export interface CallPatch {
  /** The community. */
  readonly community?: string;
  /** First `call ok` (set once). */
  readonly answeredAt?: string;
  /** The answering uid (set once). */
  readonly answeredBy?: string;
  /** Talk start (set once). */
  readonly talkAt?: string;
  /** Call end (set once). */
  readonly endedAt?: string;
  /** Why it ended (set once). */
  readonly endReason?: string;
}

/**
 * One unlock attempt in the audit log (every attempt, including rejected ones), or, with a
 * `count`, the refused attempts of one uid with one result within one minute.
 */
export interface UnlockAudit {
  /** Unique id of the entry. */
  readonly id: string;
  /** The phone that asked. */
  readonly uid: string;
  /** The room address it gave. */
  readonly roomAddress: string;
  /** The door address it gave. */
  readonly doorAddress: string;
  /** When (ISO 8601). */
  readonly at: string;
  /** The outcome. */
  readonly result: UnlockResult;
  /** The call, when the attempt matched one. */
  readonly callId?: string;
  /** Details. */
  readonly reason?: string;
  /** The phone's IP, when known. */
  readonly ip?: string;
  /** Attempts this entry stands for (from `at` to `lastAt`); absent: one. */
  readonly count?: number;
  /** The last of the `count` attempts (ISO 8601). */
  readonly lastAt?: string;
}

/**
 * What {@linkcode RecordStore.auditUnlock} needs; `at` defaults to now. With an `id` (and the
 * same `at`) it rewrites that entry, e.g. with a higher `count`.
 */
export type UnlockAuditInput = Omit<UnlockAudit, "id" | "at"> & {
  readonly at?: string;
  readonly id?: string;
};

/** What {@linkcode RecordStore.page} takes. */
export interface CallPageOptions {
  /** Calls per page, 1–{@linkcode MAX_LIST_LIMIT}. */
  readonly limit: number;
  /** Rang at or after (epoch ms). */
  readonly fromMs?: number;
  /** Rang before (epoch ms). */
  readonly toMs?: number;
  /** The `next` of the previous page. */
  readonly cursor?: string;
  /** Keeps a call when true. */
  readonly filter?: (record: CallRecord) => boolean;
  /** Index entries read at most. @default 5000 */
  readonly scan?: number;
}

/** A page of {@linkcode RecordStore.page}. */
export interface CallPage {
  readonly calls: CallRecord[];
  /** Where the next (older) page starts; absent when there is none. */
  readonly next?: string;
}

/** Unlock entries kept per call record (the audit log keeps every attempt). */
export const MAX_UNLOCKS_PER_CALL = 100;
/** Largest `limit` of {@linkcode RecordStore.recent} and {@linkcode RecordStore.recentUnlocks}. */
export const MAX_LIST_LIMIT = 10_000;

const CALL = "call";
const CALL_BY_TIME = "call_by_time";
const AUDIT = "unlock_audit";
const MAX_CAS_ATTEMPTS = 100;
const DELETE_BATCH = 200;
const GET_MANY_BATCH = 10;
const DAY_MS = 86_400_000;
const ONCE_FIELDS = ["answeredAt", "answeredBy", "talkAt", "endedAt", "endReason"] as const;
const TIME_FIELDS = ["answeredAt", "talkAt", "endedAt"] as const;

function timeOf(what: string, iso: string): number {
  const ms = typeof iso === "string" ? Date.parse(iso) : NaN;
  if (!Number.isFinite(ms)) {
    throw new TypeError(`Cannot record ${what}: ${JSON.stringify(iso)} is not an ISO 8601 time`);
  }
  return ms;
}

function checkString(what: string, field: string, value: unknown, optional = false): void {
  if (optional && value === undefined) return;
  if (typeof value !== "string" || value === "" || value.length > 256) {
    throw new TypeError(`Cannot record ${what}: ${field} must be a non-empty string`);
  }
}

function checkResult(what: string, result: unknown): asserts result is UnlockResult {
  if (!(UNLOCK_RESULTS as readonly unknown[]).includes(result)) {
    throw new TypeError(
      `Cannot record ${what}: result must be one of ${UNLOCK_RESULTS.join(", ")}`,
    );
  }
}

function checkLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
    throw new RangeError(`Cannot list records: limit must be an integer 1-${MAX_LIST_LIMIT}`);
  }
}

let auditSeq = 0;

function auditId(): string {
  const seq = (auditSeq++ % 0x1_0000_0000).toString(16).padStart(8, "0");
  const rand = crypto.getRandomValues(new Uint8Array(4));
  return seq + Array.from(rand, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Call records and the unlock audit over a Deno KV store (which the caller opens and closes). */
export class RecordStore {
  readonly #kv: Deno.Kv;
  readonly #now: () => Date;
  /** Tail of the write queue of each call with writes in flight. */
  readonly #queues = new Map<string, Promise<unknown>>();

  /** Uses `kv`; `now` supplies default times (tests pass a fixed clock). */
  constructor(kv: Deno.Kv, now: () => Date = () => new Date()) {
    this.#kv = kv;
    this.#now = now;
  }

  /**
   * Records a new call and resolves to it. Starting a call id that exists already changes
   * nothing and resolves to the stored record (a door may repeat its CALL).
   *
   * @throws {TypeError} "Cannot record call …: detail" for a missing field or a bad `ringAt`.
   */
  start(start: CallStart): Promise<CallRecord> {
    const what = `call ${JSON.stringify(start.callId)}`;
    checkString(what, "callId", start.callId);
    checkString(what, "door", start.door);
    checkString(what, "doorIp", start.doorIp);
    checkString(what, "roomAddress", start.roomAddress);
    const ringAt = start.ringAt ?? this.#now().toISOString();
    const ms = timeOf(what, ringAt);
    const record: CallRecord = {
      callId: start.callId,
      door: start.door,
      doorIp: start.doorIp,
      roomAddress: start.roomAddress,
      roomKey: roomKeyOf(start.roomAddress) ?? "",
      ...(start.community !== undefined ? { community: start.community } : {}),
      ringAt,
      unlocks: [],
    };
    return this.#serial(start.callId, async () => {
      const key = [CALL, start.callId];
      for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
        const existing = await this.#kv.get<CallRecord>(key);
        if (existing.value !== null) return existing.value;
        const result = await this.#kv.atomic()
          .check(existing)
          .set(key, record)
          .set([CALL_BY_TIME, ms, start.callId], true)
          .commit();
        if (result.ok) return record;
      }
      throw new Error(`Cannot record ${what}: store busy`);
    });
  }

  /**
   * Applies `patch` to a call (set-once fields keep their first value, see
   * {@linkcode CallPatch}) and resolves to the record, or `undefined` for an unknown call.
   *
   * @throws {TypeError} for a time that is not ISO 8601.
   */
  update(callId: string, patch: CallPatch): Promise<CallRecord | undefined> {
    const what = `call ${JSON.stringify(callId)}`;
    for (const field of TIME_FIELDS) {
      if (patch[field] !== undefined) timeOf(`${what} ${field}`, patch[field]);
    }
    return this.#mutate(callId, (record) => {
      const next: Record<string, unknown> = { ...record };
      if (patch.community !== undefined) next.community = patch.community;
      for (const field of ONCE_FIELDS) {
        if (patch[field] !== undefined && next[field] === undefined) next[field] = patch[field];
      }
      return next as unknown as CallRecord;
    });
  }

  /**
   * Appends an unlock attempt to a call (keeping the last {@linkcode MAX_UNLOCKS_PER_CALL}) and
   * resolves to the record, or `undefined` for an unknown call. `at` defaults to now.
   *
   * @throws {TypeError} for a bad result or time.
   */
  addUnlock(
    callId: string,
    entry: Omit<UnlockEntry, "at"> & { readonly at?: string },
  ): Promise<CallRecord | undefined> {
    const what = `unlock of call ${JSON.stringify(callId)}`;
    checkString(what, "uid", entry.uid);
    checkResult(what, entry.result);
    const at = entry.at ?? this.#now().toISOString();
    timeOf(what, at);
    const unlock: UnlockEntry = {
      uid: entry.uid,
      at,
      result: entry.result,
      ...(entry.reason !== undefined ? { reason: entry.reason } : {}),
    };
    return this.#mutate(callId, (record) => ({
      ...record,
      unlocks: [...record.unlocks, unlock].slice(-MAX_UNLOCKS_PER_CALL),
    }));
  }

  /** The call's record, if any. */
  async get(callId: string): Promise<CallRecord | undefined> {
    if (typeof callId !== "string" || callId === "") return undefined;
    return (await this.#kv.get<CallRecord>([CALL, callId])).value ?? undefined;
  }

  /**
   * The latest calls by ring time, newest first.
   *
   * @throws {RangeError} for a limit that is not an integer 1–{@linkcode MAX_LIST_LIMIT}.
   */
  async recent(limit = 20): Promise<CallRecord[]> {
    checkLimit(limit);
    const ids: string[] = [];
    for await (const entry of this.#kv.list({ prefix: [CALL_BY_TIME] }, { reverse: true, limit })) {
      ids.push(String(entry.key[2]));
    }
    const out: CallRecord[] = [];
    for (let i = 0; i < ids.length; i += GET_MANY_BATCH) {
      const keys = ids.slice(i, i + GET_MANY_BATCH).map((id) => [CALL, id]);
      for (const entry of await this.#kv.getMany<CallRecord[]>(keys)) {
        if (entry.value !== null) out.push(entry.value);
      }
    }
    return out;
  }

  /**
   * A page of calls by ring time, newest first: those that rang in `[fromMs, toMs)`, before the
   * `cursor` of the previous page, that `filter` keeps. At most `scan` index entries are read per
   * page (a selective filter over a long history answers with fewer calls and a `next` cursor).
   *
   * @throws {RangeError} for a limit that is not an integer 1–{@linkcode MAX_LIST_LIMIT}.
   */
  async page(options: CallPageOptions): Promise<CallPage> {
    checkLimit(options.limit);
    const scan = options.scan ?? 5000;
    let end: Deno.KvKey = [CALL_BY_TIME, options.toMs ?? Number.MAX_SAFE_INTEGER];
    const cursor = /^(\d+)-(.+)$/.exec(options.cursor ?? "");
    if (cursor) end = [CALL_BY_TIME, Number(cursor[1]), cursor[2]!];
    const start: Deno.KvKey = [CALL_BY_TIME, options.fromMs ?? 0];
    const calls: CallRecord[] = [];
    let batch: Deno.KvKey[] = [];
    let scanned = 0;
    let last: Deno.KvKey | undefined;
    const take = async (): Promise<boolean> => {
      const keys = batch.map((k) => [CALL, String(k[2])]);
      const got = await this.#kv.getMany<CallRecord[]>(keys);
      for (let i = 0; i < got.length; i++) {
        last = batch[i];
        const r = got[i]!.value;
        if (r !== null && (!options.filter || options.filter(r))) {
          calls.push(r);
          if (calls.length === options.limit) return true;
        }
      }
      batch = [];
      return false;
    };
    for await (const entry of this.#kv.list({ start, end }, { reverse: true, batchSize: 100 })) {
      batch.push(entry.key);
      scanned++;
      if (batch.length === GET_MANY_BATCH && await take()) break;
      if (scanned >= scan) break;
    }
    if (calls.length < options.limit && batch.length) await take();
    const more = calls.length === options.limit || scanned >= scan;
    return more && last ? { calls, next: `${String(last[1])}-${String(last[2])}` } : { calls };
  }

  /**
   * Logs an unlock attempt (every one, including rejected ones) and resolves to the entry.
   *
   * @throws {TypeError} for a bad result or time, or a missing uid.
   */
  async auditUnlock(input: UnlockAuditInput): Promise<UnlockAudit> {
    const what = "unlock attempt";
    checkString(what, "uid", input.uid);
    checkResult(what, input.result);
    const at = input.at ?? this.#now().toISOString();
    const ms = timeOf(what, at);
    if (input.count !== undefined && (!Number.isInteger(input.count) || input.count < 1)) {
      throw new TypeError(`Cannot record ${what}: count must be an integer >= 1`);
    }
    if (input.lastAt !== undefined) timeOf(what, input.lastAt);
    const entry: UnlockAudit = {
      id: input.id ?? auditId(),
      uid: input.uid,
      roomAddress: String(input.roomAddress ?? ""),
      doorAddress: String(input.doorAddress ?? ""),
      at,
      result: input.result,
      ...(input.callId !== undefined ? { callId: input.callId } : {}),
      ...(input.reason !== undefined ? { reason: input.reason } : {}),
      ...(input.ip !== undefined ? { ip: input.ip } : {}),
      ...(input.count !== undefined ? { count: input.count } : {}),
      ...(input.lastAt !== undefined ? { lastAt: input.lastAt } : {}),
    };
    await this.#kv.set([AUDIT, ms, entry.id], entry);
    return entry;
  }

  /**
   * The latest unlock attempts, newest first.
   *
   * @throws {RangeError} for a limit that is not an integer 1–{@linkcode MAX_LIST_LIMIT}.
   */
  async recentUnlocks(limit = 20): Promise<UnlockAudit[]> {
    checkLimit(limit);
    const out: UnlockAudit[] = [];
    for await (
      const entry of this.#kv.list<UnlockAudit>({ prefix: [AUDIT] }, { reverse: true, limit })
    ) {
      out.push(entry.value);
    }
    return out;
  }

  /**
   * Deletes calls that rang, and unlock attempts made, more than `days` days before `now`;
   * resolves to how many of each were deleted.
   *
   * @throws {RangeError} for a negative or non-finite `days`.
   */
  async pruneOlderThan(
    days: number,
    now: Date = this.#now(),
  ): Promise<{ calls: number; unlocks: number }> {
    if (!Number.isFinite(days) || days < 0) {
      throw new RangeError("Cannot prune records: days must be a number >= 0");
    }
    const cutoff = now.getTime() - days * DAY_MS;
    let calls = 0;
    let batch: Deno.KvKey[] = [];
    const flush = async () => {
      const op = this.#kv.atomic();
      for (const key of batch) op.delete(key);
      await op.commit();
      batch = [];
    };
    for await (
      const entry of this.#kv.list({ prefix: [CALL_BY_TIME], end: [CALL_BY_TIME, cutoff] })
    ) {
      batch.push(entry.key, [CALL, String(entry.key[2])]);
      calls++;
      if (batch.length >= DELETE_BATCH) await flush();
    }
    if (batch.length) await flush();
    let unlocks = 0;
    for await (const entry of this.#kv.list({ prefix: [AUDIT], end: [AUDIT, cutoff] })) {
      batch.push(entry.key);
      unlocks++;
      if (batch.length >= DELETE_BATCH) await flush();
    }
    if (batch.length) await flush();
    return { calls, unlocks };
  }

  /** Runs `fn` after the call's earlier writes from this instance have finished. */
  #serial<T>(callId: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#queues.get(callId) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => {});
    this.#queues.set(callId, tail);
    void tail.then(() => {
      if (this.#queues.get(callId) === tail) this.#queues.delete(callId);
    });
    return run;
  }

  /** Read-modify-write of one call, serialised locally and checked against other writers. */
  #mutate(
    callId: string,
    change: (record: CallRecord) => CallRecord,
  ): Promise<CallRecord | undefined> {
    if (typeof callId !== "string" || callId === "") return Promise.resolve(undefined);
    return this.#serial(callId, async () => {
      const key = [CALL, callId];
      for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
        const current = await this.#kv.get<CallRecord>(key);
        if (current.value === null) return undefined;
        const next = change(current.value);
        const result = await this.#kv.atomic().check(current).set(key, next).commit();
        if (result.ok) return next;
      }
      throw new Error(`Cannot update call ${JSON.stringify(callId)}: store busy`);
    });
  }
}
