import { assertEquals } from "../../tests/helpers/assert.ts";
import { RecordStore } from "./records.ts";

Deno.test("records: pages of calls newest first, in a time range, filtered, with a cursor", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const store = new RecordStore(kv);
    const t0 = Date.UTC(2026, 0, 1);
    for (let i = 0; i < 25; i++) {
      await store.start({
        callId: `c-${i}`,
        door: i % 2 ? "M00010100" : "M00010200",
        doorIp: "10.0.0.5",
        roomAddress: `S0001010809${i % 3}`,
        ringAt: new Date(t0 + i * 60_000).toISOString(),
      });
    }
    const ids = (p: { calls: { callId: string }[] }) => p.calls.map((c) => c.callId);
    const first = await store.page({ limit: 10 });
    assertEquals(ids(first), Array.from({ length: 10 }, (_, i) => `c-${24 - i}`));
    const second = await store.page({ limit: 10, cursor: first.next! });
    assertEquals(ids(second)[0], "c-14");
    const third = await store.page({ limit: 10, cursor: second.next! });
    assertEquals(ids(third).length, 5);
    assertEquals(third.next, undefined);

    const ranged = await store.page({ limit: 100, fromMs: t0 + 5 * 60_000, toMs: t0 + 8 * 60_000 });
    assertEquals(ids(ranged), ["c-7", "c-6", "c-5"]);
    const filtered = await store.page({
      limit: 3,
      filter: (r) => r.door === "M00010100" && r.roomKey === "00010108090",
    });
    assertEquals(ids(filtered), ["c-21", "c-15", "c-9"]);
    const scanned = await store.page({
      limit: 5,
      scan: 4,
      filter: (r) => r.roomKey === "00010108091",
    });
    assertEquals(ids(scanned), ["c-22"]);
    assertEquals(
      ids(
        await store.page({
          limit: 5,
          cursor: scanned.next!,
          filter: (r) => r.roomKey === "00010108091",
        }),
      ),
      ["c-19", "c-16", "c-13", "c-10", "c-7"],
    );
  } finally {
    kv.close();
  }
});
