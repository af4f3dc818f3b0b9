/**
 * The store's schema version: which layout of KV keys a data store holds, so that an upgrade
 * migrates it forward ({@linkcode ./migrations.ts}) and an older gateway refuses a store it
 * would misread.
 *
 * KV layout:
 * - `["schema"]` → {@linkcode SchemaMark} `{ version, writtenBy }`: the layout version and the
 *   gateway version that last migrated (or created) the store.
 *
 * Versions:
 * - 1: the layout of the released 0.1.0, which had no `["schema"]` key: bindings, call records,
 *   unlock audit, learned doors as `["door", address]` → IP.
 * - 2: doors as `["doors", address]` → record, `["binding_version"]` present, audit entries may
 *   carry `ip`.
 *
 * A store without the key is version 1 when it holds anything, else new (it gets the latest
 * version as it is opened).
 *
 * @module
 */

/** The KV key of the schema mark. */
export const SCHEMA_KEY: Deno.KvKey = ["schema"];

/** The version of a store written before schema versions existed (0.1.0). */
export const UNVERSIONED_SCHEMA = 1;

/** What `["schema"]` holds. */
export interface SchemaMark {
  /** The layout version. */
  readonly version: number;
  /** The gateway version that wrote this mark, e.g. `0.2.0`. */
  readonly writtenBy: string;
}

/** A store's schema as read by {@linkcode readSchema}. */
export interface StoredSchema {
  /** The layout version (1 for an unmarked store that holds entries). */
  readonly version: number;
  /** Who wrote the mark; `undefined` for an unmarked store. */
  readonly writtenBy?: string;
  /** True when the store holds no entry at all (a new store). */
  readonly empty: boolean;
  /** The mark's entry, for an atomic check when it is replaced. */
  readonly entry: Deno.KvEntryMaybe<unknown>;
}

function isMark(v: unknown): v is SchemaMark {
  if (typeof v !== "object" || v === null) return false;
  const m = v as Record<string, unknown>;
  return Number.isInteger(m.version) && (m.version as number) >= 1 &&
    typeof m.writtenBy === "string";
}

/**
 * The schema of the store in `kv`.
 *
 * @throws {Error} "Cannot read the store's schema: …" when `["schema"]` holds something else.
 */
export async function readSchema(kv: Deno.Kv): Promise<StoredSchema> {
  const entry = await kv.get<unknown>(SCHEMA_KEY);
  if (entry.value !== null) {
    if (!isMark(entry.value)) {
      throw new Error(
        `Cannot read the store's schema: ["schema"] holds ${
          JSON.stringify(entry.value)
        }, not { version, writtenBy }`,
      );
    }
    return { version: entry.value.version, writtenBy: entry.value.writtenBy, empty: false, entry };
  }
  for await (const _ of kv.list({ prefix: [] }, { limit: 1 })) {
    return { version: UNVERSIONED_SCHEMA, empty: false, entry };
  }
  return { version: UNVERSIONED_SCHEMA, empty: true, entry };
}

/**
 * Writes the mark `{ version, writtenBy }` unless the mark changed since `schema` was read;
 * resolves to false then.
 */
export async function writeSchema(
  kv: Deno.Kv,
  schema: Pick<StoredSchema, "entry">,
  mark: SchemaMark,
): Promise<boolean> {
  const r = await kv.atomic().check(schema.entry).set(SCHEMA_KEY, { ...mark }).commit();
  return r.ok;
}

/** Why a gateway will not use a store: written by a newer one, or not migrated yet. */
export class StoreVersionError extends Error {
  override name = "StoreVersionError";
  /** The store's version. */
  readonly stored: number;
  /** The latest version this gateway knows. */
  readonly known: number;

  /** `message` says what to do. */
  constructor(message: string, stored: number, known: number) {
    super(message);
    this.stored = stored;
    this.known = known;
  }
}

/**
 * The refusal of a store newer than this gateway: `where` names the store; `backup` the backup
 * to restore, when one fits, else `root` the directory of backups.
 */
export function tooNewMessage(
  where: string,
  stored: Pick<StoredSchema, "version" | "writtenBy">,
  known: number,
  hint: { readonly backup?: string; readonly root?: string } = {},
): string {
  const by = stored.writtenBy ? ` (intercom-gateway ${stored.writtenBy})` : "";
  const restore = hint.backup
    ? `\`intercom-gateway restore ${hint.backup}\``
    : `\`intercom-gateway restore DIR\` (${
      hint.root
        ? `\`intercom-gateway backup list\` shows the backups in ${hint.root}`
        : "a backup made before the upgrade"
    })`;
  return `Cannot open the store ${where}: it was written by schema version ${stored.version}${by}, ` +
    `this gateway knows up to ${known}; restore a backup with ${restore}, ` +
    `or run the newer gateway (deploy/rollback.sh restores the backup with the previous binary)`;
}

/** The refusal of a store that needs migrating, by a command that does not migrate. */
export function tooOldMessage(where: string, stored: number, known: number): string {
  return `Cannot open the store ${where}: it has schema version ${stored}, this gateway uses ` +
    `${known}; start the gateway once or run \`intercom-gateway migrate\` (both back the store ` +
    `up first)`;
}
