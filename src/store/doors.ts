/**
 * The doors the gateway knows (address, IP, learned or pinned, first/last heard, media details),
 * kept in Deno KV for the {@linkcode DoorRegistry} and the `door` command line.
 *
 * KV layout:
 * - `["doors", canonicalAddress]` → {@linkcode DoorRecord} (the address inside in display form,
 *   e.g. `M00010100`; the key in canonical form, e.g. `M0001010`).
 * - `["door", canonicalAddress]` → the IP as a string: the form 0.1.0 wrote (learned doors only).
 *   Still read, as a learned door without times, when no `["doors", …]` record exists; any write
 *   of that door (save, pin, delete) deletes it in the same commit, so each door has one form.
 * - `["doors_version"]` → a `Deno.KvU64` bumped by every change from another process
 *   ({@linkcode DoorStore.forget}, {@linkcode DoorStore.pin}: the CLI). The gateway's own
 *   {@linkcode DoorStore.save} and {@linkcode DoorStore.delete} commit only while that version
 *   is the one it loaded, so a `door forget` or `door pin` is never overwritten by a stale
 *   gateway: its write fails, it reloads. The gateway polls the version (`kv.watch` does not see
 *   other processes' writes to a local SQLite store).
 *
 * Reads are bounded to `maxDoors` records of each form.
 *
 * @module
 */

import { canonicalAddress, displayAddress, parseIp } from "../protocol/address.ts";
import {
  type AudioLaw,
  type DoorPersistence,
  type DoorRecord,
  type DoorSnapshot,
  type HeaderForm,
  MAX_DOORS,
} from "../door/registry.ts";

const DOORS = "doors";
const LEGACY = "door";
const VERSION: Deno.KvKey = ["doors_version"];
const MAX_CAS_ATTEMPTS = 20;
const DOOR_ADDRESS = /^[A-Z][0-9A-Za-z]{0,19}$/;

/** Options of {@linkcode DoorStore}. */
export interface DoorStoreOptions {
  /** Records of each form read at most. @default {4096} */
  maxDoors?: number;
}

/** Why `address` is not a door address, or `undefined` when it is. */
export function doorAddressProblem(address: string): string | undefined {
  return DOOR_ADDRESS.test(address)
    ? undefined
    : "not a door address (a capital letter and digits, e.g. M00010100)";
}

function isTime(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v) && v >= 0;
}

/** The record stored under `key`, or `undefined` when it is malformed. */
function readRecord(key: string, value: unknown): DoorRecord | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v.ip !== "string" || !parseIp(v.ip)) return undefined;
  if (v.mode !== "learned" && v.mode !== "pinned") return undefined;
  const r: { -readonly [K in keyof DoorRecord]: DoorRecord[K] } = {
    address: displayAddress(key),
    ip: v.ip,
    mode: v.mode,
    needsTalkForUnlock: v.needsTalkForUnlock === true,
  };
  if (isTime(v.firstHeard)) r.firstHeard = v.firstHeard;
  if (isTime(v.lastHeard)) r.lastHeard = v.lastHeard;
  if (v.headerForm === 77 || v.headerForm === 86) r.headerForm = v.headerForm as HeaderForm;
  if (v.law === "alaw" || v.law === "ulaw") r.law = v.law as AudioLaw;
  return r;
}

function storedValue(r: DoorRecord): DoorRecord {
  const out: { -readonly [K in keyof DoorRecord]: DoorRecord[K] } = {
    address: displayAddress(r.address),
    ip: r.ip,
    mode: r.mode,
    needsTalkForUnlock: r.needsTalkForUnlock,
  };
  if (r.firstHeard !== undefined) out.firstHeard = r.firstHeard;
  if (r.lastHeard !== undefined) out.lastHeard = r.lastHeard;
  if (r.headerForm !== undefined) out.headerForm = r.headerForm;
  if (r.law !== undefined) out.law = r.law;
  return out;
}

function checkAddress(what: string, address: string): string {
  const problem = doorAddressProblem(address);
  if (problem) throw new TypeError(`Cannot ${what} ${JSON.stringify(address)}: ${problem}`);
  return canonicalAddress(address);
}

/** Doors over a Deno KV store (which the caller opens and closes). */
export class DoorStore implements DoorPersistence {
  readonly #kv: Deno.Kv;
  readonly #max: number;

  /** Uses `kv`. */
  constructor(kv: Deno.Kv, options: DoorStoreOptions = {}) {
    this.#kv = kv;
    this.#max = options.maxDoors ?? MAX_DOORS;
  }

  /** Every stored door, by canonical address, with the change version read before them. */
  async load(): Promise<DoorSnapshot> {
    const version = await this.version();
    const byKey = new Map<string, DoorRecord>();
    let skipped = 0;
    for await (const e of this.#kv.list<unknown>({ prefix: [DOORS] }, { limit: this.#max })) {
      const key = e.key[1];
      const r = typeof key === "string" && !doorAddressProblem(key)
        ? readRecord(key, e.value)
        : undefined;
      if (r) byKey.set(canonicalAddress(key as string), r);
      else skipped++;
    }
    for await (const e of this.#kv.list<unknown>({ prefix: [LEGACY] }, { limit: this.#max })) {
      const key = e.key[1];
      if (
        typeof key !== "string" || doorAddressProblem(key) || typeof e.value !== "string" ||
        !parseIp(e.value)
      ) {
        skipped++;
        continue;
      }
      const canonical = canonicalAddress(key);
      if (byKey.has(canonical) || byKey.size >= this.#max) continue;
      byKey.set(canonical, {
        address: displayAddress(canonical),
        ip: e.value,
        mode: "learned",
        needsTalkForUnlock: false,
      });
    }
    const doors = [...byKey].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, r]) => r);
    return { doors, version, skipped };
  }

  /** The stored doors, by address. */
  async list(): Promise<DoorRecord[]> {
    return [...(await this.load()).doors];
  }

  /** The stored door `address` (any address form), if any. */
  async get(address: string): Promise<DoorRecord | undefined> {
    const key = checkAddress("read door", address);
    return (await this.#read(key)).record;
  }

  /** The versionstamp of the change version (`null` before the first change). */
  async version(): Promise<string | null> {
    return (await this.#kv.get(VERSION)).versionstamp;
  }

  /** Writes `record` unless the change version moved from `version`; resolves to false then. */
  async save(record: DoorRecord, version: string | null): Promise<boolean> {
    const key = checkAddress("save door", record.address);
    if (!parseIp(record.ip)) {
      throw new TypeError(`Cannot save door ${record.address}: IP ${record.ip} is malformed`);
    }
    const r = await this.#kv.atomic()
      .check({ key: VERSION, versionstamp: version })
      .set([DOORS, key], storedValue(record))
      .delete([LEGACY, key])
      .commit();
    return r.ok;
  }

  /** Deletes door `address` unless the change version moved from `version`. */
  async delete(address: string, version: string | null): Promise<boolean> {
    const key = checkAddress("delete door", address);
    const r = await this.#kv.atomic()
      .check({ key: VERSION, versionstamp: version })
      .delete([DOORS, key])
      .delete([LEGACY, key])
      .commit();
    return r.ok;
  }

  /**
   * Forgets door `address` (from another process: bumps the change version, so a running
   * gateway drops it at once). Resolves to false when no such door was stored.
   *
   * @throws {TypeError} "Cannot forget door …: detail" for a malformed address.
   */
  async forget(address: string): Promise<boolean> {
    const key = checkAddress("forget door", address);
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const { doors, legacy } = await this.#read(key);
      if (doors.value === null && legacy.value === null) return false;
      const r = await this.#kv.atomic()
        .check(doors, legacy)
        .delete([DOORS, key])
        .delete([LEGACY, key])
        .sum(VERSION, 1n)
        .commit();
      if (r.ok) return true;
    }
    throw new Error(`Cannot forget door ${displayAddress(key)}: store busy, try again`);
  }

  /**
   * Pins door `address`, or every stored door when omitted, to its stored IP (from another
   * process: bumps the change version). Resolves to the doors named, now all pinned, and how
   * many of them were learned before.
   *
   * @throws {TypeError} "Cannot pin door …: detail" for a malformed address.
   */
  async pin(address?: string): Promise<{ doors: DoorRecord[]; changed: number }> {
    const keys = address === undefined
      ? (await this.load()).doors.map((r) => canonicalAddress(r.address))
      : [checkAddress("pin door", address)];
    const doors: DoorRecord[] = [];
    let changed = 0;
    for (const key of keys) {
      const pinned = await this.#pinOne(key);
      if (!pinned) continue;
      doors.push(pinned.record);
      if (pinned.changed) changed++;
    }
    return { doors, changed };
  }

  async #pinOne(key: string): Promise<{ record: DoorRecord; changed: boolean } | undefined> {
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const { doors, legacy, record } = await this.#read(key);
      if (!record) return undefined;
      if (record.mode === "pinned") return { record, changed: false };
      const next: DoorRecord = { ...record, mode: "pinned" };
      const r = await this.#kv.atomic()
        .check(doors, legacy)
        .set([DOORS, key], storedValue(next))
        .delete([LEGACY, key])
        .sum(VERSION, 1n)
        .commit();
      if (r.ok) return { record: next, changed: true };
    }
    throw new Error(`Cannot pin door ${displayAddress(key)}: store busy, try again`);
  }

  async #read(key: string): Promise<{
    doors: Deno.KvEntryMaybe<unknown>;
    legacy: Deno.KvEntryMaybe<unknown>;
    record: DoorRecord | undefined;
  }> {
    const [doors, legacy] = await this.#kv.getMany<[unknown, unknown]>([[DOORS, key], [
      LEGACY,
      key,
    ]]);
    let record = doors.value === null ? undefined : readRecord(key, doors.value);
    if (
      !record && doors.value === null && typeof legacy.value === "string" &&
      parseIp(legacy.value)
    ) {
      record = {
        address: displayAddress(key),
        ip: legacy.value,
        mode: "learned",
        needsTalkForUnlock: false,
      };
    }
    return { doors, legacy, record };
  }
}
