import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { memoryLogger } from "../testing/mod.ts";
import { DoorStore } from "./doors.ts";
import {
  DOORS_TO_RECORDS,
  LATEST_SCHEMA,
  migrate,
  type Migration,
  MIGRATIONS,
} from "./migrations.ts";
import { readSchema, SCHEMA_KEY, StoreVersionError } from "./schema.ts";

async function withKv(fn: (kv: Deno.Kv) => Promise<void>): Promise<void> {
  const kv = await Deno.openKv(":memory:");
  try {
    await fn(kv);
  } finally {
    kv.close();
  }
}

async function dump(kv: Deno.Kv): Promise<[Deno.KvKey, unknown][]> {
  const out: [Deno.KvKey, unknown][] = [];
  for await (const e of kv.list({ prefix: [] })) out.push([e.key, e.value]);
  return out;
}

/** A store as 0.1.0 left it: bindings, a call, an audit entry, two learned doors. */
async function v1Store(kv: Deno.Kv): Promise<void> {
  await kv.set(["binding", "00010108090", "u1"], { uid: "u1", tokenHash: "0".repeat(64) });
  await kv.set(["binding_by_uid", "u1", "00010108090"], true);
  await kv.set(["call", "c1"], { callId: "c1", unlocks: [] });
  await kv.set(["call_by_time", 1000, "c1"], true);
  await kv.set(["unlock_audit", 1000, "a1"], { id: "a1", result: "not_bound" });
  await kv.set(["door", "M0001010"], "10.0.0.5");
  await kv.set(["door", "S0001010809"], "10.0.0.6");
}

Deno.test("migrations: one per version, in order, up to LATEST_SCHEMA", () => {
  MIGRATIONS.forEach((m, i) => assertEquals([m.from, m.to], [i + 1, i + 2], m.name));
  assertEquals(LATEST_SCHEMA, MIGRATIONS.length + 1);
  assertEquals(LATEST_SCHEMA, 2);
});

Deno.test("migration 1 → 2: old door rows become records; binding_version appears", async () => {
  await withKv(async (kv) => {
    await v1Store(kv);
    const r = await DOORS_TO_RECORDS.run(kv);
    assertEquals(r.detail, {
      doorsMoved: 2,
      doorsMerged: 0,
      doorsDropped: 0,
      bindingVersion: 1,
    });
    assertEquals(r.rows, 5);
    assertEquals((await Array.fromAsync(kv.list({ prefix: ["door"] }))).length, 0);
    assertEquals((await kv.get(["doors", "M0001010"])).value, {
      address: "M00010100",
      ip: "10.0.0.5",
      mode: "learned",
      needsTalkForUnlock: false,
    });
    // The door store reads them as the records it writes.
    assertEquals((await new DoorStore(kv).list()).map((d) => [d.address, d.ip, d.mode]), [
      ["M00010100", "10.0.0.5", "learned"],
      ["S00010108090", "10.0.0.6", "learned"],
    ]);
    assertEquals(typeof (await kv.get(["binding_version"])).value, "string");
    // Everything else is untouched.
    const kept = (await dump(kv)).filter(([k]) => k[0] !== "doors" && k[0] !== "binding_version");
    assertEquals(kept.map(([k]) => k[0]), [
      "binding",
      "binding_by_uid",
      "call",
      "call_by_time",
      "unlock_audit",
    ]);
  });
});

Deno.test("migration 1 → 2 is idempotent: a second run, or one after a crash, changes nothing", async () => {
  await withKv(async (kv) => {
    await v1Store(kv);
    await DOORS_TO_RECORDS.run(kv);
    const once = await dump(kv);
    const again = await DOORS_TO_RECORDS.run(kv);
    assertEquals(again.rows, 0);
    assertEquals(await dump(kv), once);
  });
});

Deno.test("migration 1 → 2: a door with a record keeps it; malformed old rows are dropped", async () => {
  await withKv(async (kv) => {
    const record = {
      address: "M00010100",
      ip: "10.0.0.9",
      mode: "pinned",
      needsTalkForUnlock: true,
    };
    await kv.set(["doors", "M0001010"], record);
    await kv.set(["door", "M0001010"], "10.0.0.5");
    await kv.set(["door", "M0001020"], 42);
    await kv.set(["door", "not a door"], "10.0.0.7");
    await kv.set(["binding_version"], "v");
    const r = await DOORS_TO_RECORDS.run(kv);
    assertEquals(r.detail, { doorsMoved: 0, doorsMerged: 1, doorsDropped: 2, bindingVersion: 0 });
    assertEquals(await dump(kv), [
      [["binding_version"], "v"],
      [["doors", "M0001010"], record],
    ]);
  });
});

Deno.test("migrate: runs the steps from the store's version, marks it, logs each step", async () => {
  await withKv(async (kv) => {
    await v1Store(kv);
    const logger = memoryLogger("info");
    let t = 0;
    const reports = await migrate(kv, { logger, writtenBy: "9.9.9", now: () => (t += 7) });
    assertEquals(reports.map((r) => [r.from, r.to, r.rows, r.ms]), [[1, 2, 5, 7]]);
    assertEquals((await kv.get(SCHEMA_KEY)).value, { version: 2, writtenBy: "9.9.9" });
    const rec = logger.records.find((r) => r.msg === "store migrated")!;
    assertEquals([rec.from, rec.to, rec.rows, rec.ms, rec.doorsMoved], [1, 2, 5, 7, 2]);
    // Current now: nothing more to do, nothing logged.
    assertEquals(await migrate(kv, { logger, writtenBy: "9.9.9" }), []);
    assertEquals(logger.records.filter((r) => r.msg === "store migrated").length, 1);
  });
});

Deno.test("migrate: a new store gets the latest mark without running a step", async () => {
  await withKv(async (kv) => {
    const logger = memoryLogger("info");
    assertEquals(await migrate(kv, { logger, writtenBy: "1.0.0" }), []);
    assertEquals((await readSchema(kv)).version, LATEST_SCHEMA);
    assertEquals(logger.records, []);
  });
});

Deno.test("migrate: a newer store is refused and left alone", async () => {
  await withKv(async (kv) => {
    await kv.set(SCHEMA_KEY, { version: LATEST_SCHEMA + 1, writtenBy: "9.0.0" });
    let error: unknown;
    await migrate(kv, { logger: memoryLogger(), writtenBy: "1.0.0" }).catch((e) => (error = e));
    assert(error instanceof StoreVersionError);
    assertEquals([error.stored, error.known], [LATEST_SCHEMA + 1, LATEST_SCHEMA]);
    assertEquals((await kv.get(SCHEMA_KEY)).value, {
      version: LATEST_SCHEMA + 1,
      writtenBy: "9.0.0",
    });
  });
});

Deno.test("migrate: a failing step keeps the mark of the last step done; the next run resumes", async () => {
  await withKv(async (kv) => {
    await kv.set(["x"], 0);
    let fail = true;
    const steps: Migration[] = [
      { from: 1, to: 2, name: "a", run: async () => (await kv.set(["a"], 1), { rows: 1 }) },
      {
        from: 2,
        to: 3,
        name: "b",
        run: () => fail ? Promise.reject(new Error("disk full")) : Promise.resolve({ rows: 0 }),
      },
    ];
    let message = "";
    await migrate(kv, { logger: memoryLogger(), writtenBy: "t", migrations: steps })
      .catch((e) => (message = e.message));
    assertEquals(message, "Cannot migrate the store from version 2 to 3: disk full");
    assertEquals((await readSchema(kv)).version, 2);
    fail = false;
    const done = await migrate(kv, { logger: memoryLogger(), writtenBy: "t", migrations: steps });
    assertEquals(done.map((r) => r.name), ["b"]);
    assertEquals((await readSchema(kv)).version, 3);
  });
});
