import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import {
  readSchema,
  SCHEMA_KEY,
  tooNewMessage,
  tooOldMessage,
  UNVERSIONED_SCHEMA,
  writeSchema,
} from "./schema.ts";

async function withKv(fn: (kv: Deno.Kv) => Promise<void>): Promise<void> {
  const kv = await Deno.openKv(":memory:");
  try {
    await fn(kv);
  } finally {
    kv.close();
  }
}

Deno.test("schema: an empty store is new, an unmarked one is 0.1.0's version 1", async () => {
  await withKv(async (kv) => {
    const empty = await readSchema(kv);
    assertEquals([empty.version, empty.empty, empty.writtenBy], [
      UNVERSIONED_SCHEMA,
      true,
      undefined,
    ]);
    await kv.set(["binding", "00010108090", "u"], {});
    const v1 = await readSchema(kv);
    assertEquals([v1.version, v1.empty, v1.writtenBy], [1, false, undefined]);
  });
});

Deno.test("schema: the mark is read back, and written only over the mark that was read", async () => {
  await withKv(async (kv) => {
    const before = await readSchema(kv);
    assert(await writeSchema(kv, before, { version: 2, writtenBy: "0.2.0" }));
    const after = await readSchema(kv);
    assertEquals([after.version, after.writtenBy, after.empty], [2, "0.2.0", false]);
    // A second writer that read the old mark loses.
    assertEquals(await writeSchema(kv, before, { version: 3, writtenBy: "x" }), false);
    assertEquals((await kv.get(SCHEMA_KEY)).value, { version: 2, writtenBy: "0.2.0" });
  });
});

Deno.test("schema: a mark of another shape is an error, not a version", async () => {
  await withKv(async (kv) => {
    await kv.set(SCHEMA_KEY, "two");
    let message = "";
    await readSchema(kv).catch((e) => (message = e.message));
    assert(/^Cannot read the store's schema: \["schema"\] holds "two"/.test(message), message);
  });
});

Deno.test("schema: the refusals say the versions and what to do", () => {
  const newer = tooNewMessage("/d/gateway.kv", { version: 3, writtenBy: "0.3.0" }, 2, {
    backup: "/d/backup/2-x",
  });
  assertEquals(
    newer.startsWith(
      "Cannot open the store /d/gateway.kv: it was written by schema version 3 " +
        "(intercom-gateway 0.3.0), this gateway knows up to 2; restore a backup with " +
        "`intercom-gateway restore /d/backup/2-x`",
    ),
    true,
    newer,
  );
  assert(/backup list` shows the backups in \/d\/backup/.test(
    tooNewMessage("/d/gateway.kv", { version: 3 }, 2, { root: "/d/backup" }),
  ));
  assert(/intercom-gateway migrate/.test(tooOldMessage("/d/gateway.kv", 1, 2)));
});
