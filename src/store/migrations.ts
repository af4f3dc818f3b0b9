/**
 * Forward migrations of the store, one per schema version (see {@linkcode ./schema.ts}), run in
 * order by {@linkcode migrate} when a gateway opens an older store (after it was backed up, see
 * {@linkcode ./kv.ts}).
 *
 * Rules for a migration:
 * - small: one layout change; it writes the layout of its own version (no imports of store
 *   classes whose layout moves on later);
 * - idempotent: running it again, or after it stopped half-way (power loss), gives the same
 *   store; each row moves in one atomic commit checked against what was read;
 * - it resolves to the rows it touched; {@linkcode migrate} logs from → to, rows and time, and
 *   writes the new `["schema"]` mark after each step.
 *
 * To add version N+1: append `{ from: N, to: N + 1, name, run }` to {@linkcode MIGRATIONS}, give
 * it a test in `migrations_test.ts` (a store of version N in, the new layout out, run twice),
 * and retire the read-old-form fallbacks of the stores once no supported release writes them.
 *
 * @module
 */

import type { Logger } from "../log.ts";
import { canonicalAddress, displayAddress, parseIp } from "../protocol/address.ts";
import { doorAddressProblem } from "./doors.ts";
import { readSchema, StoreVersionError, writeSchema } from "./schema.ts";

/** What a migration did. */
export interface MigrationResult {
  /** KV entries written or deleted. */
  readonly rows: number;
  /** Counts by kind, for the log (e.g. `{ doorsMoved: 2 }`). */
  readonly detail?: Readonly<Record<string, number>>;
}

/** One step of the store's layout. */
export interface Migration {
  /** The version it reads. */
  readonly from: number;
  /** The version it writes (`from + 1`). */
  readonly to: number;
  /** What it does, for the log. */
  readonly name: string;
  /** Migrates `kv`; idempotent. */
  run(kv: Deno.Kv): Promise<MigrationResult>;
}

const MAX_CAS_ATTEMPTS = 20;

/**
 * 1 → 2: learned doors move from `["door", address]` → IP (0.1.0) to `["doors", address]` →
 * record (learned, no times known); a door that has a record already keeps it and loses its old
 * row; a malformed old row (not a door address, not an IPv4) is dropped (the backup keeps it).
 * `["binding_version"]` is created when missing, so a running gateway's binding watch starts
 * from a value.
 */
export const DOORS_TO_RECORDS: Migration = {
  from: 1,
  to: 2,
  name: "doors: [door, addr] → ip becomes [doors, addr] → record; binding_version",
  async run(kv) {
    let moved = 0;
    let merged = 0;
    let dropped = 0;
    let rows = 0;
    const legacy: Deno.KvEntry<unknown>[] = [];
    for await (const e of kv.list<unknown>({ prefix: ["door"] })) legacy.push(e);
    for (const e of legacy) {
      const key = e.key[1];
      const valid = e.key.length === 2 && typeof key === "string" && !doorAddressProblem(key) &&
        typeof e.value === "string" && parseIp(e.value) !== undefined;
      for (let attempt = 0;; attempt++) {
        if (attempt >= MAX_CAS_ATTEMPTS) {
          throw new Error(`Cannot migrate door ${String(key)}: store busy, try again`);
        }
        const old = await kv.get<unknown>(e.key);
        if (old.value === null) break; // moved by an earlier, interrupted run
        const op = kv.atomic().check(old).delete(e.key);
        let kind: "moved" | "merged" | "dropped" = "dropped";
        if (valid) {
          const canonical = canonicalAddress(key as string);
          const current = await kv.get<unknown>(["doors", canonical]);
          op.check(current);
          if (current.value === null) {
            op.set(["doors", canonical], {
              address: displayAddress(canonical),
              ip: old.value,
              mode: "learned",
              needsTalkForUnlock: false,
            });
            kind = "moved";
          } else {
            kind = "merged";
          }
        }
        if ((await op.commit()).ok) {
          if (kind === "moved") moved++;
          else if (kind === "merged") merged++;
          else dropped++;
          rows += kind === "moved" ? 2 : 1;
          break;
        }
      }
    }
    const version = await kv.get(["binding_version"]);
    let bindingVersion = 0;
    if (version.value === null) {
      const r = await kv.atomic().check(version).set(["binding_version"], crypto.randomUUID())
        .commit();
      if (r.ok) {
        bindingVersion = 1;
        rows++;
      }
    }
    return {
      rows,
      detail: { doorsMoved: moved, doorsMerged: merged, doorsDropped: dropped, bindingVersion },
    };
  },
};

/** Every migration, oldest first: `MIGRATIONS[i].from === i + 1`. */
export const MIGRATIONS: readonly Migration[] = [DOORS_TO_RECORDS];

/** The schema version this gateway writes and reads. */
export const LATEST_SCHEMA: number = MIGRATIONS[MIGRATIONS.length - 1]!.to;

/** What {@linkcode migrate} did in one step. */
export interface MigrationReport extends MigrationResult {
  readonly from: number;
  readonly to: number;
  readonly name: string;
  /** Time taken, ms. */
  readonly ms: number;
}

/** Options of {@linkcode migrate}. */
export interface MigrateOptions {
  /** Gets one info record per step. */
  readonly logger: Logger;
  /** The gateway version, written into the mark. */
  readonly writtenBy: string;
  /** The steps. @default {MIGRATIONS} */
  readonly migrations?: readonly Migration[];
  /** Milliseconds for the time taken. @default performance.now */
  readonly now?: () => number;
}

/**
 * Runs the migrations from the store's version to the latest, in order, writing the mark after
 * each; resolves to what each did (none when the store is current). A new, empty store just gets
 * the latest mark.
 *
 * @throws {StoreVersionError} when the store is newer than the latest migration.
 * @throws {Error} "Cannot migrate the store …" when a step fails (the steps before it stay
 *   done: the mark says how far it got, and the next start resumes there).
 */
export async function migrate(kv: Deno.Kv, options: MigrateOptions): Promise<MigrationReport[]> {
  const steps = options.migrations ?? MIGRATIONS;
  const latest = steps.length ? steps[steps.length - 1]!.to : 1;
  const now = options.now ?? (() => performance.now());
  const reports: MigrationReport[] = [];
  for (let guard = 0; guard <= steps.length; guard++) {
    const schema = await readSchema(kv);
    if (schema.version > latest) {
      throw new StoreVersionError(
        `Cannot migrate the store: its schema version ${schema.version} is newer than ${latest}`,
        schema.version,
        latest,
      );
    }
    if (schema.empty || schema.version === latest) {
      if (schema.empty || schema.writtenBy === undefined) {
        await writeSchema(kv, schema, { version: latest, writtenBy: options.writtenBy });
      }
      return reports;
    }
    const step = steps.find((m) => m.from === schema.version);
    if (!step) {
      throw new Error(`Cannot migrate the store: no migration from version ${schema.version}`);
    }
    const t0 = now();
    let result: MigrationResult;
    try {
      result = await step.run(kv);
    } catch (e) {
      throw new Error(
        `Cannot migrate the store from version ${step.from} to ${step.to}: ${
          e instanceof Error ? e.message : String(e)
        }`,
        { cause: e },
      );
    }
    if (!(await writeSchema(kv, schema, { version: step.to, writtenBy: options.writtenBy }))) {
      throw new Error(
        `Cannot migrate the store from version ${step.from} to ${step.to}: another process ` +
          `changed its schema mark meanwhile`,
      );
    }
    const report: MigrationReport = {
      from: step.from,
      to: step.to,
      name: step.name,
      ...result,
      ms: Math.round(now() - t0),
    };
    options.logger.info("store migrated", {
      from: report.from,
      to: report.to,
      migration: report.name,
      rows: report.rows,
      ...(report.detail ?? {}),
      ms: report.ms,
    });
    reports.push(report);
  }
  throw new Error("Cannot migrate the store: the migrations do not lead to the latest version");
}
