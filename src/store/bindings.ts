/**
 * Phone ↔ room bindings ("uid 与 roomAddress 是绑定关系", seed 四).
 *
 * A binding ties a phone's uid to a room; it holds the SHA-256 of the token the phone logs in
 * with (never the token). A room may have several phones and a uid several rooms; there is one
 * binding, and one token, per (uid, room). Rooms are keyed by their {@linkcode roomKey} (the 11
 * digits after the letter), so `Y00010108090` and `S00010108090` are the same room.
 *
 * KV layout (written in one atomic operation):
 * - `["binding", roomKey, uid]` → the binding and its `tokenHash`
 * - `["binding_by_uid", uid, roomKey]` → `true` (index of a uid's rooms)
 * - `["binding_version"]` → a new random value on every add, rotation or removal, so that a
 *   running gateway sees changes made by the CLI in another process ({@linkcode bindingVersion})
 *
 * A removal, or a rotation (a new token), deletes the binding's Web Push subscriptions
 * (`["push_sub", roomKey, uid, …]`, see `push_subscriptions.ts`) in the same commit and moves
 * `["push_version"]`.
 *
 * Nothing is cached: every call reads the KV, so bindings changed by the CLI while the gateway
 * runs take effect at once.
 *
 * @module
 */

import { roomKey as roomKeyOf } from "../protocol/address.ts";
import { hashToken, newToken, tokenMatches } from "./token.ts";

/** A phone ↔ room binding as shown to callers (no secret in it). */
export interface Binding {
  /** The phone's uid. */
  readonly uid: string;
  /** The room address as given when bound, e.g. `Y00010108090`. */
  readonly roomAddress: string;
  /** The 11 digits identifying the room. */
  readonly roomKey: string;
  /** The community name, e.g. `花苑` (may be empty). */
  readonly community: string;
  /** When the (uid, room) binding was first created (ISO 8601). */
  readonly createdAt: string;
}

/** What {@linkcode BindingStore.add} needs. */
export interface BindingInput {
  /** The phone's uid: 1–64 characters, no whitespace or control characters. */
  readonly uid: string;
  /** A letter followed by 11 digits, e.g. `Y00010108090`. */
  readonly roomAddress: string;
  /** Up to 64 characters; default empty. */
  readonly community?: string;
}

/**
 * One entry of {@linkcode BindingStore.import}: the room as `roomAddress` or `room`. With
 * `tokenHash` (from `bind export --with-token-hashes`) the binding keeps the phone's token
 * instead of getting a new one.
 */
export interface ImportEntry {
  /** The phone's uid. */
  readonly uid: string;
  /** The room address. */
  readonly roomAddress?: string;
  /** Alias of `roomAddress`. */
  readonly room?: string;
  /** The community name. */
  readonly community?: string;
  /** The SHA-256 of the phone's token (64 lowercase hex digits): the token stays valid. */
  readonly tokenHash?: string;
  /** When the binding was first made (ISO 8601); kept when given. */
  readonly createdAt?: string;
}

/** One entry of {@linkcode BindingStore.export}: the format {@linkcode BindingStore.import} reads. */
export interface ExportEntry {
  /** The phone's uid. */
  readonly uid: string;
  /** The room address. */
  readonly roomAddress: string;
  /** The community name. */
  readonly community: string;
  /** When the binding was first made (ISO 8601). */
  readonly createdAt: string;
  /** The SHA-256 of the phone's token, only when asked for. */
  readonly tokenHash?: string;
}

/** The result of one imported entry: a new token, or none when its hash was imported. */
export interface ImportResult {
  /** The stored binding. */
  readonly binding: Binding;
  /** The new token (shown once), or `undefined` when the entry carried its `tokenHash`. */
  readonly token: string | undefined;
  /** True when the (uid, room) was bound already. */
  readonly rotated: boolean;
}

/** The result of binding a uid to a room. */
export interface BindResult {
  /** The stored binding. */
  readonly binding: Binding;
  /** The new token: shown once, never stored. */
  readonly token: string;
  /** True when the (uid, room) was already bound and only its token (and details) changed. */
  readonly rotated: boolean;
}

/** Filter of {@linkcode BindingStore.list}; `room` is a room address or a bare room key. */
export interface BindingFilter {
  /** Only this room. */
  readonly room?: string;
  /** Only this uid. */
  readonly uid?: string;
}

/** A binding as stored: with the SHA-256 of its token. */
export interface StoredBinding extends Binding {
  readonly tokenHash: string;
}

/**
 * The community's shared bindings (`--cluster`: the hub's bucket), where changes go when this
 * gateway is one of several; implemented by `cluster/hub_bindings.ts`. The local KV stays the
 * copy logins read (kept in step by the cluster's binding sync). Methods throw when the shared
 * store is unreachable.
 */
export interface SharedBindings {
  /** The binding and its revision (0 when absent). */
  get(roomKey: string, uid: string): Promise<{ value: StoredBinding | null; revision: number }>;
  /** Writes `value` when the entry is still at `revision` (0: absent); false on a conflict. */
  put(value: StoredBinding, revision: number): Promise<boolean>;
  /** Deletes the entry when still at `revision`; false on a conflict. */
  delete(roomKey: string, uid: string, revision: number): Promise<boolean>;
  /** Room keys `uid` is bound to. */
  roomsOf(uid: string): Promise<string[]>;
}

/** A binding change refused because the community's shared store cannot be reached. */
export class BindingsUnavailableError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "BindingsUnavailableError";
  }
}

function unavailable(op: "add" | "remove", e: unknown): BindingsUnavailableError {
  const detail = e instanceof Error ? e.message : String(e);
  return new BindingsUnavailableError(
    `Cannot ${op} binding: the community hub is unreachable (${detail}); ` +
      "try again once the link to the office is back (this gateway keeps the bindings it last saw)",
  );
}

/** Longest uid accepted. */
export const MAX_UID_LENGTH = 64;
/** Longest community name accepted (in characters). */
export const MAX_COMMUNITY_LENGTH = 64;

const ROOM_ADDRESS = /^[A-Za-z]\d{11}$/;
const TOKEN_HASH = /^[0-9a-f]{64}$/;
const ROOM_KEY = /^\d{11}$/;
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
const WHITESPACE = /\s/;
const MAX_CAS_ATTEMPTS = 20;
/** Compared against when no binding exists, so that an unknown uid or room still costs a hash. */
const NO_HASH = "0".repeat(64);

const BINDING = "binding";
const BY_UID = "binding_by_uid";
/** The first part of a binding's key, `["binding", roomKey, uid]`. */
export const BINDING_KEY_PREFIX = BINDING;
/** The first part of a push subscription's key, `["push_sub", roomKey, uid, id]`. */
export const PUSH_SUB_PREFIX = "push_sub";
/** The KV key bumped by every push subscription change. */
export const PUSH_VERSION_KEY: Deno.KvKey = ["push_version"];
/** The KV key bumped by every binding change. */
export const BINDING_VERSION_KEY: Deno.KvKey = ["binding_version"];

/** The current binding version (changes with every add, rotation or removal). */
export async function bindingVersion(kv: Deno.Kv): Promise<string | null> {
  return (await kv.get<string>(BINDING_VERSION_KEY)).value;
}

/** A binding that a token was just checked against, with the id of that token. */
export interface VerifiedBinding extends Binding {
  /** Names the token (not secret: a prefix of its hash); changes when the token rotates. */
  readonly tokenId: string;
}

const tokenIdOf = (stored: StoredBinding): string => stored.tokenHash.slice(0, 16);

function show(value: unknown): string {
  const s = typeof value === "string" ? JSON.stringify(value) : String(value);
  return s.length > 80 ? s.slice(0, 77) + "..." : s;
}

/** Why `uid` is not a valid uid, or `undefined` when it is. */
export function uidProblem(uid: unknown): string | undefined {
  if (typeof uid !== "string") return "uid must be a string";
  if (uid === "") return "uid is empty";
  if ([...uid].length > MAX_UID_LENGTH) return `uid is longer than ${MAX_UID_LENGTH} characters`;
  if (CONTROL.test(uid) || WHITESPACE.test(uid)) {
    return "uid must be printable, without spaces or control characters";
  }
  return undefined;
}

/** Why `community` is not a valid community name, or `undefined` when it is. */
export function communityProblem(community: unknown): string | undefined {
  if (typeof community !== "string") return "community must be a string";
  if ([...community].length > MAX_COMMUNITY_LENGTH) {
    return `community is longer than ${MAX_COMMUNITY_LENGTH} characters`;
  }
  if (CONTROL.test(community)) return "community contains control characters";
  return undefined;
}

/** True for a room address: a letter followed by exactly 11 digits. */
export function isRoomAddress(address: unknown): address is string {
  return typeof address === "string" && ROOM_ADDRESS.test(address);
}

/**
 * The room key named by `room`: a room address (`Y00010108090`) or a bare 11-digit key;
 * `undefined` for anything else.
 */
export function toRoomKey(room: unknown): string | undefined {
  if (typeof room !== "string") return undefined;
  if (ROOM_KEY.test(room)) return room;
  return ROOM_ADDRESS.test(room) ? roomKeyOf(room) : undefined;
}

/** Why `input` is not a valid binding, or `undefined` when it is. */
export function bindingProblem(input: BindingInput): string | undefined {
  const uidError = uidProblem(input.uid);
  if (uidError) return uidError;
  if (!isRoomAddress(input.roomAddress)) {
    return "roomAddress must be a letter followed by 11 digits, e.g. Y00010108090";
  }
  return communityProblem(input.community ?? "");
}

/**
 * Checks a binding's fields and derives its room key.
 *
 * @throws {TypeError} "Cannot bind <uid> to <room>: detail".
 */
export function checkBindingInput(
  input: BindingInput,
): { uid: string; roomAddress: string; roomKey: string; community: string } {
  const problem = bindingProblem(input);
  if (problem) {
    throw new TypeError(`Cannot bind ${show(input.uid)} to ${show(input.roomAddress)}: ${problem}`);
  }
  const { uid, roomAddress } = input;
  return { uid, roomAddress, roomKey: roomKeyOf(roomAddress)!, community: input.community ?? "" };
}

function publicBinding(stored: StoredBinding): Binding {
  return {
    uid: stored.uid,
    roomAddress: stored.roomAddress,
    roomKey: stored.roomKey,
    community: stored.community,
    createdAt: stored.createdAt,
  };
}

/** Phone ↔ room bindings over a Deno KV store (which the caller opens and closes). */
export class BindingStore {
  readonly #kv: Deno.Kv;
  readonly #now: () => Date;
  readonly #shared: SharedBindings | undefined;

  /**
   * Uses `kv`; `now` supplies `createdAt` (tests pass a fixed clock). With `shared`, changes are
   * written there first (the community's store) and then to `kv`; reads stay on `kv`.
   */
  constructor(kv: Deno.Kv, now: () => Date = () => new Date(), shared?: SharedBindings) {
    this.#kv = kv;
    this.#now = now;
    this.#shared = shared;
  }

  /**
   * Binds `uid` to a room and issues a new token. Binding an already bound (uid, room) keeps its
   * `createdAt`, takes the given address and community, replaces the token (the old one stops
   * working) and answers `rotated: true`.
   *
   * @throws {TypeError} "Cannot bind …: detail" for a bad uid, room address or community.
   */
  async add(input: BindingInput): Promise<BindResult> {
    const checked = checkBindingInput(input);
    const token = newToken();
    const r = await this.#put(checked, await hashToken(token));
    return { ...r, token };
  }

  /** Writes the binding with `tokenHash`; `createdAt` wins over the stored one when given. */
  async #put(
    input: { uid: string; roomAddress: string; roomKey: string; community: string },
    tokenHash: string,
    createdAt?: string,
  ): Promise<{ binding: Binding; rotated: boolean }> {
    const { uid, roomAddress, roomKey } = input;
    const key = [BINDING, roomKey, uid];
    if (this.#shared) return await this.#putShared(this.#shared, input, tokenHash, createdAt);
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const existing = await this.#kv.get<StoredBinding>(key);
      // A new token ends the old one's push subscriptions (its phone must subscribe again).
      const rotated = existing.value !== null && existing.value.tokenHash !== tokenHash;
      const subs = rotated ? await this.#pushSubs(roomKey, uid) : undefined;
      const stored = this.#record(input, tokenHash, createdAt ?? existing.value?.createdAt);
      const op = this.#kv.atomic()
        .check(existing)
        .set(key, stored)
        .set([BY_UID, uid, roomKey], true)
        .set(BINDING_VERSION_KEY, crypto.randomUUID());
      if (subs) this.#dropPushSubs(op, subs);
      const result = await op.commit();
      if (result.ok) return { binding: publicBinding(stored), rotated: existing.value !== null };
    }
    throw new Error(`Cannot bind ${show(uid)} to ${show(roomAddress)}: store busy, try again`);
  }

  /** The record stored for `input`: created at `createdAt`, or now when that is not given. */
  #record(
    input: { uid: string; roomAddress: string; roomKey: string; community: string },
    tokenHash: string,
    createdAt: string | undefined,
  ): StoredBinding {
    const { uid, roomAddress, roomKey, community } = input;
    return {
      uid,
      roomAddress,
      roomKey,
      community,
      createdAt: createdAt ?? this.#now().toISOString(),
      tokenHash,
    };
  }

  /** The binding's push subscription keys, with the marker they were read under. */
  async #pushSubs(
    roomKey: string,
    uid: string,
  ): Promise<{ version: Deno.KvEntryMaybe<unknown>; keys: Deno.KvKey[] }> {
    const version = await this.#kv.get(PUSH_VERSION_KEY);
    const keys: Deno.KvKey[] = [];
    for await (const e of this.#kv.list({ prefix: [PUSH_SUB_PREFIX, roomKey, uid] })) {
      keys.push(e.key);
    }
    return { version, keys };
  }

  /**
   * Deletes them in `op`, checked against the marker: a subscription added meanwhile fails the
   * commit, which is then retried.
   */
  #dropPushSubs(
    op: Deno.AtomicOperation,
    subs: { version: Deno.KvEntryMaybe<unknown>; keys: Deno.KvKey[] },
  ): void {
    op.check(subs.version);
    for (const k of subs.keys) op.delete(k);
    if (subs.keys.length) op.set(PUSH_VERSION_KEY, crypto.randomUUID());
  }

  async #putShared(
    shared: SharedBindings,
    input: { uid: string; roomAddress: string; roomKey: string; community: string },
    tokenHash: string,
    createdAt?: string,
  ): Promise<{ binding: Binding; rotated: boolean }> {
    const { uid, roomAddress, roomKey } = input;
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      let ok: boolean;
      let existing: { value: StoredBinding | null; revision: number };
      let stored: StoredBinding;
      try {
        existing = await shared.get(roomKey, uid);
        stored = this.#record(input, tokenHash, createdAt ?? existing.value?.createdAt);
        ok = await shared.put(stored, existing.revision);
      } catch (e) {
        throw unavailable("add", e);
      }
      if (!ok) continue;
      // At once here too (the sync from the hub brings the same value a moment later, finds it
      // applied, and so would not drop the old token's push subscriptions: done here).
      const kept = stored;
      await this.#commitLocal(
        roomKey,
        uid,
        (op) =>
          op.set([BINDING, roomKey, uid], kept)
            .set([BY_UID, uid, roomKey], true)
            .set(BINDING_VERSION_KEY, crypto.randomUUID()),
        (local) => local !== null && local.tokenHash !== tokenHash,
      );
      return { binding: publicBinding(stored), rotated: existing.value !== null };
    }
    throw new Error(`Cannot bind ${show(uid)} to ${show(roomAddress)}: store busy, try again`);
  }

  async #removeShared(shared: SharedBindings, uid: string, roomKey: string): Promise<boolean> {
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      let ok: boolean;
      try {
        const existing = await shared.get(roomKey, uid);
        if (existing.value === null) return false;
        ok = await shared.delete(roomKey, uid, existing.revision);
      } catch (e) {
        throw unavailable("remove", e);
      }
      if (!ok) continue;
      await this.#commitLocal(
        roomKey,
        uid,
        (op) =>
          op.delete([BINDING, roomKey, uid])
            .delete([BY_UID, uid, roomKey])
            .set(BINDING_VERSION_KEY, crypto.randomUUID()),
        () => true,
      );
      return true;
    }
    return false;
  }

  /**
   * Applies a change the shared store accepted to the local copy, deleting the binding's push
   * subscriptions in the same commit when `dropSubs` says so for the local binding as it was
   * (retried when a subscription is added meanwhile; at worst the change goes in without).
   */
  async #commitLocal(
    roomKey: string,
    uid: string,
    change: (op: Deno.AtomicOperation) => void,
    dropSubs: (local: StoredBinding | null) => boolean,
  ): Promise<void> {
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const local = await this.#kv.get<StoredBinding>([BINDING, roomKey, uid]);
      const subs = dropSubs(local.value) ? await this.#pushSubs(roomKey, uid) : undefined;
      const op = this.#kv.atomic();
      change(op);
      if (subs) this.#dropPushSubs(op, subs);
      if ((await op.commit()).ok) return;
    }
    const op = this.#kv.atomic();
    change(op);
    await op.commit();
  }

  /**
   * Removes `uid`'s binding to `room` (an address or room key), or all of `uid`'s bindings when
   * `room` is omitted. Resolves to the number removed.
   *
   * @throws {TypeError} "Cannot unbind …: detail" for a malformed room.
   */
  async remove(uid: string, room?: string): Promise<number> {
    let keys: string[];
    if (room !== undefined) {
      const key = toRoomKey(room);
      if (key === undefined) {
        throw new TypeError(
          `Cannot unbind ${show(uid)} from ${
            show(room)
          }: room must be a letter followed by 11 digits`,
        );
      }
      keys = [key];
    } else if (this.#shared && !uidProblem(uid)) {
      try {
        keys = await this.#shared.roomsOf(uid);
      } catch (e) {
        throw unavailable("remove", e);
      }
    } else {
      keys = await this.roomsOf(uid);
    }
    if (uidProblem(uid)) return 0;
    let removed = 0;
    const shared = this.#shared;
    if (shared) {
      for (const roomKey of keys) if (await this.#removeShared(shared, uid, roomKey)) removed++;
      return removed;
    }
    for (const roomKey of keys) {
      const key = [BINDING, roomKey, uid];
      for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
        const existing = await this.#kv.get<StoredBinding>(key);
        if (existing.value === null) break;
        const subs = await this.#pushSubs(roomKey, uid);
        const op = this.#kv.atomic()
          .check(existing)
          .delete(key)
          .delete([BY_UID, uid, roomKey])
          .set(BINDING_VERSION_KEY, crypto.randomUUID());
        this.#dropPushSubs(op, subs);
        const result = await op.commit();
        if (result.ok) {
          removed++;
          break;
        }
      }
    }
    return removed;
  }

  /** Bindings, all or filtered by room and/or uid, ordered by room key then uid. */
  async list(filter: BindingFilter = {}): Promise<Binding[]> {
    const { room, uid } = filter;
    if (room !== undefined && uid !== undefined) {
      const found = await this.get(uid, room);
      return found ? [found] : [];
    }
    if (uid !== undefined) {
      const out: Binding[] = [];
      for (const roomKey of await this.roomsOf(uid)) {
        const found = await this.get(uid, roomKey);
        if (found) out.push(found);
      }
      return out;
    }
    let prefix: Deno.KvKey = [BINDING];
    if (room !== undefined) {
      const key = toRoomKey(room);
      if (key === undefined) return [];
      prefix = [BINDING, key];
    }
    const out: Binding[] = [];
    for await (const entry of this.#kv.list<StoredBinding>({ prefix })) {
      out.push(publicBinding(entry.value));
    }
    return out;
  }

  /**
   * The bindings of {@linkcode list} in the format of {@linkcode import}; with
   * `withTokenHashes`, each with its token's hash, so that an import elsewhere keeps the phones
   * logged in (the hashes let anyone holding them check a guessed token offline: keep such an
   * export as safe as the store).
   */
  async export(
    filter: BindingFilter = {},
    options: { readonly withTokenHashes?: boolean } = {},
  ): Promise<ExportEntry[]> {
    const out: ExportEntry[] = [];
    for (const b of await this.list(filter)) {
      const entry: ExportEntry = {
        uid: b.uid,
        roomAddress: b.roomAddress,
        community: b.community,
        createdAt: b.createdAt,
      };
      if (!options.withTokenHashes) {
        out.push(entry);
        continue;
      }
      const stored = (await this.#kv.get<StoredBinding>([BINDING, b.roomKey, b.uid])).value;
      if (stored) out.push({ ...entry, tokenHash: stored.tokenHash });
    }
    return out;
  }

  /** The binding of `uid` to `room` (an address or room key), if any. */
  async get(uid: string, room: string): Promise<Binding | undefined> {
    const key = toRoomKey(room);
    if (key === undefined || uidProblem(uid)) return undefined;
    const entry = await this.#kv.get<StoredBinding>([BINDING, key, uid]);
    return entry.value === null ? undefined : publicBinding(entry.value);
  }

  /** True when `uid` is bound to `room` (an address or room key). */
  async isBound(uid: string, room: string): Promise<boolean> {
    return (await this.get(uid, room)) !== undefined;
  }

  /**
   * The binding when `token` is the current token of `uid`'s binding to `roomAddress` (an
   * address or room key), else `undefined`. Never throws on bad input. The token is hashed and
   * compared in constant time even when no such binding exists, so the answer time does not tell
   * bound from unbound.
   */
  async verify(
    uid: string,
    roomAddress: string,
    token: string,
  ): Promise<VerifiedBinding | undefined> {
    const key = toRoomKey(roomAddress);
    let stored: StoredBinding | null = null;
    if (key !== undefined && !uidProblem(uid)) {
      stored = (await this.#kv.get<StoredBinding>([BINDING, key, uid])).value;
    }
    const ok = await tokenMatches(
      typeof token === "string" ? token : "",
      stored?.tokenHash ?? NO_HASH,
    );
    return ok && stored !== null
      ? { ...publicBinding(stored), tokenId: tokenIdOf(stored) }
      : undefined;
  }

  /** The id of the current token of `uid`'s binding to `room`, or undefined when unbound. */
  async tokenIdOf(uid: string, room: string): Promise<string | undefined> {
    const key = toRoomKey(room);
    if (key === undefined || uidProblem(uid)) return undefined;
    const entry = await this.#kv.get<StoredBinding>([BINDING, key, uid]);
    return entry.value === null ? undefined : tokenIdOf(entry.value);
  }

  /** Room keys `uid` is bound to, ascending. */
  async roomsOf(uid: string): Promise<string[]> {
    if (uidProblem(uid)) return [];
    const out: string[] = [];
    for await (const entry of this.#kv.list({ prefix: [BY_UID, uid] })) {
      out.push(String(entry.key[2]));
    }
    return out;
  }

  /** Uids bound to `room` (an address or room key), ascending. */
  async uidsOf(room: string): Promise<string[]> {
    const key = toRoomKey(room);
    if (key === undefined) return [];
    const out: string[] = [];
    for await (const entry of this.#kv.list({ prefix: [BINDING, key] })) {
      out.push(String(entry.key[2]));
    }
    return out;
  }

  /**
   * Binds every entry and resolves to their results, in order: a new token for each entry
   * without `tokenHash`, the phone's own token kept for each entry with one. All entries are
   * checked before anything is written, so a bad file changes nothing.
   *
   * @throws {TypeError} "Cannot bind entry N (…): detail" for a malformed entry, or a (uid, room)
   *   listed twice (the second would revoke the first's token).
   */
  async import(entries: readonly ImportEntry[]): Promise<ImportResult[]> {
    if (!Array.isArray(entries)) throw new TypeError("Cannot import bindings: expected an array");
    const inputs: { input: BindingInput; tokenHash?: string; createdAt?: string }[] = [];
    const seen = new Map<string, number>();
    entries.forEach((entry: unknown, i) => {
      const at = `Cannot bind entry ${i + 1}`;
      if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
        throw new TypeError(`${at}: expected an object with uid, roomAddress (or room), community`);
      }
      const e = entry as Record<string, unknown>;
      if (e.roomAddress !== undefined && e.room !== undefined && e.roomAddress !== e.room) {
        throw new TypeError(`${at}: room and roomAddress differ`);
      }
      const input = {
        uid: e.uid,
        roomAddress: e.roomAddress ?? e.room,
        community: e.community ?? "",
      } as BindingInput;
      const problem = bindingProblem(input);
      if (problem) throw new TypeError(`${at}: ${problem}`);
      if (
        e.tokenHash !== undefined &&
        (typeof e.tokenHash !== "string" || !TOKEN_HASH.test(e.tokenHash))
      ) {
        throw new TypeError(`${at}: tokenHash must be 64 lowercase hex digits (a SHA-256)`);
      }
      if (
        e.createdAt !== undefined &&
        (typeof e.createdAt !== "string" || !Number.isFinite(Date.parse(e.createdAt)))
      ) {
        throw new TypeError(`${at}: createdAt must be an ISO 8601 time`);
      }
      const roomKey = roomKeyOf(input.roomAddress)!;
      const pair = JSON.stringify([input.uid, roomKey]);
      const first = seen.get(pair);
      if (first !== undefined) {
        throw new TypeError(
          `${at}: ${show(input.uid)} is bound to room ${roomKey} by entry ${first} already`,
        );
      }
      seen.set(pair, i + 1);
      inputs.push({
        input,
        ...(e.tokenHash !== undefined ? { tokenHash: e.tokenHash as string } : {}),
        ...(e.createdAt !== undefined ? { createdAt: e.createdAt as string } : {}),
      });
    });
    const results: ImportResult[] = [];
    for (const { input, tokenHash, createdAt } of inputs) {
      if (tokenHash === undefined) {
        const token = newToken();
        const r = await this.#put(checkBindingInput(input), await hashToken(token), createdAt);
        results.push({ ...r, token });
        continue;
      }
      const kept = await this.#put(checkBindingInput(input), tokenHash, createdAt);
      results.push({ ...kept, token: undefined });
    }
    return results;
  }
}
