import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { memoryLogger } from "../testing/mod.ts";
import {
  type Backup,
  BACKUP_DIR,
  backupName,
  backupStore,
  copyStore,
  KEEP_BACKUPS,
  listBackups,
  MANIFEST_FILE,
  pickBackup,
  prepareStore,
  pruneBackups,
  restoreStore,
  rollbackStore,
} from "./backup.ts";
import { lockStore } from "./lock.ts";
import { LATEST_SCHEMA } from "./migrations.ts";
import { readSchema, SCHEMA_KEY, StoreVersionError } from "./schema.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function dump(kv: Deno.Kv): Promise<[Deno.KvKey, unknown][]> {
  const out: [Deno.KvKey, unknown][] = [];
  for await (const e of kv.list({ prefix: [] })) out.push([e.key, e.value]);
  return out;
}

async function dumpFile(file: string): Promise<[Deno.KvKey, unknown][]> {
  const kv = await Deno.openKv(file);
  try {
    return await dump(kv);
  } finally {
    kv.close();
  }
}

async function withStoreFile<T>(file: string, fn: (kv: Deno.Kv) => Promise<T>): Promise<T> {
  const kv = await Deno.openKv(file);
  try {
    return await fn(kv);
  } finally {
    kv.close();
  }
}

/** A 0.1.0 store (no schema mark) in `dir/gateway.kv`. */
async function v1Store(dir: string): Promise<void> {
  await withStoreFile(`${dir}/gateway.kv`, async (kv) => {
    await kv.set(["binding", "00010108090", "u1"], { uid: "u1" });
    await kv.set(["door", "M0001010"], "10.0.0.5");
    await kv.set(["call_by_time", 1000, "c1"], true);
  });
}

const T0 = new Date("2025-06-01T12:00:00.000Z");

Deno.test("copyStore: every entry, every value and key type, into a new file with no WAL", async () => {
  await withDir(async (dir) => {
    const kv = await Deno.openKv(`${dir}/a.kv`);
    try {
      await kv.set(["s", "x"], "text");
      await kv.set(["n", 1.5, 2n, true], { nested: [1, "2", null], at: new Date(0) });
      await kv.set(["b", new Uint8Array([1, 2, 3])], new Uint8Array([9, 8]));
      await kv.set(["u64"], new Deno.KvU64(7n));
      for (let i = 0; i < 250; i++) await kv.set(["many", i], "x".repeat(i * 40));
      const n = await copyStore(kv, `${dir}/b.kv`);
      assertEquals(n, 254);
      assertEquals([...Deno.readDirSync(dir)].map((e) => e.name).filter((f) => f.startsWith("b")), [
        "b.kv",
      ]);
      assertEquals(await dumpFile(`${dir}/b.kv`), await dump(kv));
      // A KvU64 is still one: it sums.
      await withStoreFile(`${dir}/b.kv`, async (copy) => {
        await copy.atomic().sum(["u64"], 1n).commit();
        assertEquals((await copy.get<Deno.KvU64>(["u64"])).value?.value, 8n);
      });
    } finally {
      kv.close();
    }
  });
});

Deno.test("copyStore: a write during the copy is not torn: the copy is made again", async () => {
  await withDir(async (dir) => {
    const kv = await Deno.openKv(`${dir}/a.kv`);
    try {
      await kv.set(["a"], "old a");
      await kv.set(["z"], "old z");
      // A gateway writing both keys in one commit while the first pass is between them.
      let lists = 0;
      const source = new Proxy(kv, {
        get(target, prop) {
          if (prop !== "list") return Reflect.get(target, prop, target);
          return (selector: Deno.KvListSelector, options?: Deno.KvListOptions) => {
            const first = lists++ === 0;
            const inner = target.list(selector, options);
            return (async function* () {
              for await (const e of inner) {
                yield e;
                if (first && e.key[0] === "a") {
                  await target.atomic().set(["a"], "new a").set(["z"], "new z").commit();
                }
              }
            })();
          };
        },
      });
      await copyStore(source, `${dir}/b.kv`);
      assert(lists >= 4, `lists ${lists}`); // copy, check (differs), copy, check
      assertEquals(await dumpFile(`${dir}/b.kv`), [[["a"], "new a"], [["z"], "new z"]]);
    } finally {
      kv.close();
    }
  });
});

Deno.test("backupStore: <schema>-<time>/ with gateway.kv and backup.json, written whole", async () => {
  await withDir(async (dir) => {
    await v1Store(dir);
    const root = `${dir}/${BACKUP_DIR}`;
    const made = await withStoreFile(
      `${dir}/gateway.kv`,
      (kv) => backupStore(kv, { source: "src", root, reason: "manual", now: T0 }),
    );
    assertEquals(made.dir, `${root}/1-2025-06-01T12-00-00.000Z`);
    assertEquals(backupName(1, T0), "1-2025-06-01T12-00-00.000Z");
    assertEquals(JSON.parse(await Deno.readTextFile(`${made.dir}/${MANIFEST_FILE}`)), {
      format: 1,
      schema: 1,
      writtenBy: null,
      createdAt: T0.toISOString(),
      entries: 3,
      reason: "manual",
      source: "src",
    });
    assertEquals(await dumpFile(`${made.dir}/gateway.kv`), await dumpFile(`${dir}/gateway.kv`));
    // Same second again: a new directory, never over the first.
    const second = await withStoreFile(
      `${dir}/gateway.kv`,
      (kv) => backupStore(kv, { source: "src", root, reason: "manual", now: T0 }),
    );
    assertEquals(second.dir, `${made.dir}-2`);
    assertEquals([...Deno.readDirSync(root)].map((e) => e.name).sort(), [
      "1-2025-06-01T12-00-00.000Z",
      "1-2025-06-01T12-00-00.000Z-2",
    ]);
    // --to: a directory that is not empty is refused.
    let message = "";
    await withStoreFile(
      `${dir}/gateway.kv`,
      (kv) => backupStore(kv, { source: "src", to: root, reason: "manual" }),
    ).catch((e) => (message = e.message));
    assertEquals(message, `Cannot back up the store to ${root}: the directory is not empty`);
  });
});

function fake(schema: number, minute: number): Backup {
  return {
    format: 1,
    schema,
    writtenBy: null,
    createdAt: `2025-06-01T12:${String(minute).padStart(2, "0")}:00.000Z`,
    entries: 1,
    reason: "t",
    source: "s",
    dir: `d${minute}`,
  };
}

Deno.test("pickBackup: the newest a gateway knowing up to N opens", () => {
  const list = [fake(3, 9), fake(2, 8), fake(1, 7), fake(2, 6)]; // newest first
  assertEquals(pickBackup(list, 2)?.dir, "d8");
  assertEquals(pickBackup(list, 1)?.dir, "d7");
  assertEquals(pickBackup(list, 0), undefined);
});

Deno.test("pruneBackups: the newest 5 stay, and the newest of each schema version", async () => {
  await withDir(async (dir) => {
    const root = `${dir}/${BACKUP_DIR}`;
    const src = await Deno.openKv(`${dir}/gateway.kv`);
    try {
      await src.set(["x"], 1);
      // One of schema 1 (the one a rollback to 0.1.0 needs), then 7 of schema 2.
      await backupStore(src, { source: "s", root, reason: "t", now: new Date(T0.getTime()) });
      await src.set(SCHEMA_KEY, { version: 2, writtenBy: "t" });
      for (let i = 1; i <= 7; i++) {
        await backupStore(src, {
          source: "s",
          root,
          reason: "t",
          now: new Date(T0.getTime() + i * 60_000),
        });
      }
    } finally {
      src.close();
    }
    const removed = await pruneBackups(root);
    assertEquals(removed.length, 2);
    const kept = await listBackups(root);
    assertEquals(kept.length, KEEP_BACKUPS + 1);
    assertEquals(kept.map((b) => b.schema), [2, 2, 2, 2, 2, 1]);
    assertEquals(kept[0]!.createdAt, "2025-06-01T12:07:00.000Z");
  });
});

Deno.test("prepareStore: an older store is backed up before it is migrated", async () => {
  await withDir(async (dir) => {
    await v1Store(dir);
    const before = await dumpFile(`${dir}/gateway.kv`);
    const logger = memoryLogger("info");
    const done = await withStoreFile(
      `${dir}/gateway.kv`,
      (kv) => prepareStore(kv, { location: dir, logger, writtenBy: "2.0.0", now: () => T0 }),
    );
    assertEquals([done.from, done.migrations.map((m) => m.to)], [1, [2]]);
    assert(done.backup);
    assertEquals(done.backup.dir, `${dir}/backup/1-2025-06-01T12-00-00.000Z`);
    // The backup is the store as it was: version 1, the old door row, no mark.
    assertEquals(await dumpFile(`${done.backup.dir}/gateway.kv`), before);
    await withStoreFile(`${dir}/gateway.kv`, async (kv) => {
      assertEquals((await readSchema(kv)).version, LATEST_SCHEMA);
      assertEquals((await kv.get(["door", "M0001010"])).value, null);
    });
    assertEquals(logger.records.map((r) => r.msg), [
      "store backed up before migrating",
      "store migrated",
    ]);
    // Current now: no second backup.
    const again = await withStoreFile(
      `${dir}/gateway.kv`,
      (kv) => prepareStore(kv, { location: dir, logger, writtenBy: "2.0.0" }),
    );
    assertEquals([again.backup, again.migrations], [undefined, []]);
    assertEquals((await listBackups(`${dir}/backup`)).length, 1);
  });
});

Deno.test("prepareStore: a newer store is refused, naming the backup to restore", async () => {
  await withDir(async (dir) => {
    await v1Store(dir);
    await withStoreFile(
      `${dir}/gateway.kv`,
      (kv) =>
        prepareStore(kv, {
          location: dir,
          logger: memoryLogger(),
          writtenBy: "2.0.0",
          now: () => T0,
        }),
    );
    await withStoreFile(
      `${dir}/gateway.kv`,
      (kv) => kv.set(SCHEMA_KEY, { version: 9, writtenBy: "9.0.0" }),
    );
    let error: unknown;
    await withStoreFile(
      `${dir}/gateway.kv`,
      (kv) => prepareStore(kv, { location: dir, logger: memoryLogger(), writtenBy: "2.0.0" }),
    ).catch((e) => (error = e));
    assert(error instanceof StoreVersionError);
    assertEquals(
      error.message.split(";")[0],
      `Cannot open the store ${dir}/gateway.kv: it was written by schema version 9 ` +
        `(intercom-gateway 9.0.0), this gateway knows up to ${LATEST_SCHEMA}`,
    );
    assert(
      error.message.includes(`intercom-gateway restore ${dir}/backup/1-2025-06-01T12-00-00.000Z`),
      error.message,
    );
  });
});

Deno.test("prepareStore: :memory: migrates without a backup, with a warning", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    await kv.set(["door", "M0001010"], "10.0.0.5");
    const logger = memoryLogger("info");
    const done = await prepareStore(kv, { location: ":memory:", logger, writtenBy: "t" });
    assertEquals([done.backup, done.migrations.length], [undefined, 1]);
    assertEquals(logger.records[0]?.level, "warn");
  } finally {
    kv.close();
  }
});

Deno.test("restoreStore: replaces the store, after backing the current one up", async () => {
  await withDir(async (dir) => {
    const data = `${dir}/data`;
    await Deno.mkdir(data);
    await v1Store(data);
    const old = await dumpFile(`${data}/gateway.kv`);
    const first = await withStoreFile(
      `${data}/gateway.kv`,
      (kv) =>
        prepareStore(kv, { location: data, logger: memoryLogger(), writtenBy: "t", now: () => T0 }),
    );
    await withStoreFile(
      `${data}/gateway.kv`,
      (kv) => kv.set(["binding", "00010108090", "new"], {}),
    );
    const current = await dumpFile(`${data}/gateway.kv`);
    const later = new Date(T0.getTime() + 60_000);
    const r = await restoreStore(data, first.backup!.dir, { now: later });
    assertEquals([r.schema, r.entries, r.from], [1, 3, first.backup!.dir]);
    assertEquals(await dumpFile(`${data}/gateway.kv`), old);
    assertEquals(r.saved?.reason, "before restore");
    assertEquals(await dumpFile(`${r.saved!.dir}/gateway.kv`), current);
    assertEquals(
      [...Deno.readDirSync(data)].map((e) => e.name).sort(),
      ["backup", "gateway.kv", "gateway.lock"],
    );
  });
});

Deno.test("restoreStore: refused while a gateway holds the store, or has it open", async () => {
  await withDir(async (dir) => {
    await v1Store(dir);
    const backup = `${dir}/copy`;
    await withStoreFile(
      `${dir}/gateway.kv`,
      (kv) => backupStore(kv, { source: "s", to: backup, reason: "t" }),
    );
    const held = await lockStore(dir);
    let message = "";
    await restoreStore(dir, backup).catch((e) => (message = e.message));
    held?.release();
    assert(
      message.startsWith(
        `Cannot restore into ${dir}/gateway.kv: it is locked by process ${Deno.pid}`,
      ) &&
        message.endsWith("(systemctl stop intercom-gateway)"),
      message,
    );
    // A 0.1.0 gateway takes no lock, but SQLite's WAL shows it has the store open.
    const open = await Deno.openKv(`${dir}/gateway.kv`);
    try {
      await restoreStore(dir, backup).catch((e) => (message = e.message));
    } finally {
      open.close();
    }
    assert(/another process has it open \(.*gateway\.kv-wal exists\)/.test(message), message);
  });
});

Deno.test("restoreStore: refuses a missing, empty or newer backup", async () => {
  await withDir(async (dir) => {
    let message = "";
    await restoreStore(dir, `${dir}/nope`).catch((e) => (message = e.message));
    assertEquals(message, `Cannot restore from ${dir}/nope: no such file or directory`);
    await Deno.mkdir(`${dir}/empty`);
    await restoreStore(dir, `${dir}/empty`).catch((e) => (message = e.message));
    assert(/no gateway\.kv in it/.test(message), message);
    await withStoreFile(`${dir}/empty/gateway.kv`, () => Promise.resolve());
    await restoreStore(dir, `${dir}/empty`).catch((e) => (message = e.message));
    assert(/it holds no entries/.test(message), message);
    await withStoreFile(
      `${dir}/empty/gateway.kv`,
      (kv) => kv.set(SCHEMA_KEY, { version: 9, writtenBy: "9" }),
    );
    await restoreStore(dir, `${dir}/empty`).catch((e) => (message = e.message));
    assert(/schema version 9, this gateway knows up to/.test(message), message);
  });
});

Deno.test("rollbackStore: restores the newest backup the older gateway opens, only when needed", async () => {
  await withDir(async (dir) => {
    await v1Store(dir);
    const old = await dumpFile(`${dir}/gateway.kv`);
    // Schema 1 ≤ 1: nothing to do.
    assertEquals((await rollbackStore(dir, 1)).restored, false);
    await withStoreFile(
      `${dir}/gateway.kv`,
      (kv) =>
        prepareStore(kv, { location: dir, logger: memoryLogger(), writtenBy: "t", now: () => T0 }),
    );
    assertEquals((await rollbackStore(dir, 2)).restored, false);
    const r = await rollbackStore(dir, 1);
    assert(r.restored);
    assertEquals(r.schema, 1);
    assertEquals(await dumpFile(`${dir}/gateway.kv`), old);
  });
  await withDir(async (dir) => {
    await withStoreFile(
      `${dir}/gateway.kv`,
      (kv) => kv.set(SCHEMA_KEY, { version: 2, writtenBy: "t" }),
    );
    let message = "";
    await rollbackStore(dir, 1).catch((e) => (message = e.message));
    assertEquals(
      message,
      `Cannot roll the store back to schema 1: no backup of version 1 or older in ${dir}/backup`,
    );
  });
});
