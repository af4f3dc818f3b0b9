import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { lockPath, lockStore, storeLocked } from "./lock.ts";

Deno.test("lock: one holder at a time; the message names the holder; release frees it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data = `${dir}/data`;
    const lock = await lockStore(data);
    assert(lock);
    assertEquals(lock.path, `${data}/gateway.lock`);
    assertEquals(await Deno.readTextFile(lock.path), `${Deno.pid}\n`);
    assert(await storeLocked(data));
    let message = "";
    await lockStore(data).catch((e) => (message = e.message));
    assertEquals(
      message,
      `Cannot lock the store ${data}/gateway.lock: it is locked by process ${Deno.pid} ` +
        "(a running gateway, a restore or a migration); stop it first",
    );
    lock.release();
    lock.release(); // twice is harmless
    assertEquals(await storeLocked(data), false);
    using again = await lockStore(data);
    assert(again);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("lock: beside a store file given as --data; none for :memory: and URLs", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/my.kv`, "");
    assertEquals(await lockPath(`${dir}/my.kv`), `${dir}/my.kv.lock`);
    assertEquals(await lockPath(":memory:"), undefined);
    assertEquals(await lockStore("https://kv.example/db"), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
