import { assert, assertEquals, assertRejects } from "../../tests/helpers/assert.ts";
import { FakeClock } from "../testing/mod.ts";
import { DoorRegistry } from "../door/registry.ts";
import { openStore } from "./kv.ts";
import { DoorStore } from "./doors.ts";

async function withKv(fn: (kv: Deno.Kv, dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  const kv = await openStore(dir);
  try {
    await fn(kv, dir);
  } finally {
    kv.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const door = {
  address: "M00010100",
  ip: "10.0.0.5",
  mode: "learned",
  firstHeard: 1_000,
  lastHeard: 2_000,
  headerForm: 86,
  law: "alaw",
  needsTalkForUnlock: true,
} as const;

Deno.test("door store: save, load and delete records; keyed by the canonical address", async () => {
  await withKv(async (kv) => {
    const store = new DoorStore(kv);
    assertEquals(await store.load(), { doors: [], version: null, skipped: 0 });
    assert(await store.save(door, null));
    assert(await store.save({ ...door, address: "S00010108090", ip: "10.0.0.6" }, null));
    // The same door written in another address form replaces it.
    assert(await store.save({ ...door, address: "M0001010", ip: "10.0.0.7" }, null));
    assertEquals((await store.list()).map((r) => [r.address, r.ip]), [
      ["M00010100", "10.0.0.7"],
      ["S00010108090", "10.0.0.6"],
    ]);
    assertEquals(await store.get("M00010100"), { ...door, ip: "10.0.0.7" });
    assertEquals((await kv.get(["doors", "M0001010"])).value, { ...door, ip: "10.0.0.7" });
    assert(await store.delete("M00010100", null));
    assertEquals((await store.list()).map((r) => r.address), ["S00010108090"]);
    await assertRejects(() => store.save({ ...door, ip: "10.0.0" }, null));
    await assertRejects(() => store.save({ ...door, address: "m1" }, null));
  });
});

Deno.test("door store: reads the 0.1.0 form [door, address] → IP; a write replaces it", async () => {
  await withKv(async (kv) => {
    await kv.set(["door", "M0001010"], "10.0.0.5");
    await kv.set(["door", "M0001020"], "10.0.0.6");
    await kv.set(["door", "M0001030"], 42); // not an IP: skipped
    const store = new DoorStore(kv);
    const snap = await store.load();
    assertEquals(snap.doors, [
      { address: "M00010100", ip: "10.0.0.5", mode: "learned", needsTalkForUnlock: false },
      { address: "M00010200", ip: "10.0.0.6", mode: "learned", needsTalkForUnlock: false },
    ]);
    assertEquals(snap.skipped, 1);
    assert(await store.save({ ...door, ip: "10.0.0.9" }, null));
    assertEquals((await kv.get(["door", "M0001010"])).value, null, "one form per door");
    assertEquals((await store.get("M00010100"))?.ip, "10.0.0.9");
    // forget and pin work on the old form too.
    assertEquals((await store.pin("M00010200")).changed, 1);
    assertEquals((await kv.get(["door", "M0001020"])).value, null);
    assertEquals((await store.get("M00010200"))?.mode, "pinned");
    await kv.set(["door", "M0001040"], "10.0.0.8");
    assert(await store.forget("M00010400"));
    assertEquals((await kv.get(["door", "M0001040"])).value, null);
  });
});

Deno.test("door store: malformed records are skipped and counted; reads are bounded", async () => {
  await withKv(async (kv) => {
    await kv.set(["doors", "M0001010"], { ...door, ip: "nope" });
    await kv.set(["doors", "M0001020"], { ...door, mode: "sticky" });
    await kv.set(["doors", 7], door);
    await kv.set(["doors", "M0001030"], { ...door, headerForm: 99, law: "opus", lastHeard: -1 });
    const snap = await new DoorStore(kv).load();
    assertEquals(snap.skipped, 3);
    assertEquals(snap.doors, [{
      address: "M00010300",
      ip: "10.0.0.5",
      mode: "learned",
      firstHeard: 1_000,
      needsTalkForUnlock: true,
    }]);
    for (let i = 0; i < 5; i++) await kv.set(["doors", `B0000${i}`], { ...door, address: "x" });
    assertEquals((await new DoorStore(kv, { maxDoors: 3 }).load()).doors.length, 3);
  });
});

Deno.test("door store: forget and pin bump the change version; the gateway's stale writes fail", async () => {
  await withKv(async (kv) => {
    const store = new DoorStore(kv);
    assert(await store.save(door, null));
    assert(await store.save({ ...door, address: "M00010200", mode: "pinned" }, null));
    assertEquals(await store.version(), null, "the gateway's own writes do not move it");
    assertEquals(await store.pin("M00010300"), { doors: [], changed: 0 });
    assertEquals(await store.version(), null, "nothing pinned, nothing changed");

    const pinned = await store.pin();
    assertEquals(pinned.changed, 1);
    assertEquals(pinned.doors.map((r) => [r.address, r.mode]), [
      ["M00010100", "pinned"],
      ["M00010200", "pinned"],
    ]);
    const v1 = await store.version();
    assert(v1 !== null);
    assert(!(await store.save({ ...door, lastHeard: 3_000 }, null)), "stale: refused");
    assertEquals((await store.get("M00010100"))?.mode, "pinned");
    assert(!(await store.delete("M00010100", null)));

    assert(await store.forget("M00010100"));
    assert(!(await store.forget("M00010100")));
    const v2 = await store.version();
    assert(v2 !== null && v2 !== v1);
    assert(await store.save({ ...door, address: "M00010300" }, v2));
    await assertRejects(() => store.forget("nope"));
  });
});

Deno.test("door store: a running registry takes a door forget / pin from another process on sync (its poll)", async () => {
  await withKv(async (kv, dir) => {
    const clock = new FakeClock();
    const registry = new DoorRegistry({
      clock,
      wallClock: () => 1_000_000 + clock.now(),
      store: new DoorStore(kv),
      pollMs: 1000,
    });
    await registry.load();
    registry.start();
    try {
      // Doors are learned from calls that completed the handshake.
      assert(registry.learn("M00010100", "10.0.0.5"));
      assert(registry.learn("M00010200", "10.0.0.6"));
      await registry.flush();
      // The CLI: its own KV handle on the same database.
      const cli = await openStore(dir);
      try {
        const other = new DoorStore(cli);
        assertEquals((await other.list()).map((r) => r.address), ["M00010100", "M00010200"]);
        assert(await other.forget("M00010100"));
        assertEquals((await other.pin("M00010200")).changed, 1);
      } finally {
        cli.close();
      }
      await registry.sync();
      assertEquals(registry.list().map((d) => [d.address, d.mode]), [["M00010200", "pinned"]]);
      clock.advance(86_400_000);
      assertEquals(registry.admit("M00010200", "10.0.0.9"), "refused", "pinned");
      assertEquals(registry.admit("M00010100", "10.0.0.9"), "unknown", "forgotten: learnable");
      assert(registry.learn("M00010100", "10.0.0.9"), "learned afresh");
    } finally {
      await registry.close();
    }
    assertEquals(
      (await new DoorStore(kv).list()).map((r) => [r.address, r.ip, r.mode]),
      // Every remaining door was pinned: the replaced door joins the pinned building pinned.
      [["M00010100", "10.0.0.9", "pinned"], ["M00010200", "10.0.0.6", "pinned"]],
    );
  });
});
