import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { type CallStart, MAX_UNLOCKS_PER_CALL, RecordStore } from "./records.ts";

const T0 = Date.parse("2025-03-01T10:00:00.000Z");
const iso = (offsetMs: number) => new Date(T0 + offsetMs).toISOString();
const CALL: CallStart = {
  callId: "c1",
  door: "M00010100",
  doorIp: "192.168.31.189",
  roomAddress: "S00010108090",
  community: "花苑",
  ringAt: iso(0),
};

async function withKv(fn: (kv: Deno.Kv) => Promise<void>): Promise<void> {
  const kv = await Deno.openKv(":memory:");
  try {
    await fn(kv);
  } finally {
    kv.close();
  }
}

async function throwsType(fn: () => Promise<unknown>, re: RegExp): Promise<void> {
  try {
    await fn();
  } catch (e) {
    assert(e instanceof TypeError || e instanceof RangeError, String(e));
    assert(re.test(e.message), e.message);
    return;
  }
  assert(false, `expected an error matching ${re}`);
}

Deno.test("records: start, update and addUnlock build a call record", async () => {
  await withKv(async (kv) => {
    const store = new RecordStore(kv);
    const started = await store.start(CALL);
    assertEquals(started, { ...CALL, roomKey: "00010108090", unlocks: [] });
    // A repeated CALL does not reset the record.
    await store.update("c1", { answeredAt: iso(1000), answeredBy: "u1" });
    assertEquals((await store.start({ ...CALL, ringAt: iso(5) })).answeredAt, iso(1000));
    // Set-once fields keep the first value.
    await store.update("c1", { answeredAt: iso(2000), answeredBy: "u2", talkAt: iso(3000) });
    await store.addUnlock("c1", { uid: "u1", at: iso(4000), result: "success" });
    await store.addUnlock("c1", { uid: "u2", at: iso(4500), result: "fail", reason: "no reply" });
    await store.update("c1", { endedAt: iso(9000), endReason: "door hung up" });
    const r = await store.update("c1", { endedAt: iso(9999), endReason: "talk timeout" });
    assertEquals(r, {
      ...CALL,
      roomKey: "00010108090",
      answeredAt: iso(1000),
      answeredBy: "u1",
      talkAt: iso(3000),
      endedAt: iso(9000),
      endReason: "door hung up",
      unlocks: [
        { uid: "u1", at: iso(4000), result: "success" },
        { uid: "u2", at: iso(4500), result: "fail", reason: "no reply" },
      ],
    });
    assertEquals(await store.get("c1"), r);
    assertEquals(await store.get("nope"), undefined);
    assertEquals(await store.update("nope", { talkAt: iso(1) }), undefined);
    assertEquals(await store.addUnlock("nope", { uid: "u", result: "success" }), undefined);
  });
});

Deno.test("records: bad input is rejected", async () => {
  await withKv(async (kv) => {
    const store = new RecordStore(kv);
    await throwsType(() => store.start({ ...CALL, callId: "" }), /callId/);
    await throwsType(() => store.start({ ...CALL, ringAt: "yesterday" }), /ISO 8601/);
    await store.start(CALL);
    await throwsType(() => store.update("c1", { talkAt: "soon" }), /talkAt.*ISO 8601/);
    await throwsType(
      () => store.addUnlock("c1", { uid: "u", result: "maybe" as never }),
      /result must be one of success, fail/,
    );
    await throwsType(
      () => store.auditUnlock({ uid: "u", roomAddress: "", doorAddress: "", result: "x" as never }),
      /result/,
    );
    await throwsType(() => store.recent(0), /limit/);
    await throwsType(() => store.recentUnlocks(1.5), /limit/);
    await throwsType(() => store.pruneOlderThan(-1), /days/);
  });
});

Deno.test("records: concurrent writes to one call lose nothing", async () => {
  await withKv(async (kv) => {
    const a = new RecordStore(kv);
    const b = new RecordStore(kv); // a second writer without a shared queue: versionstamp checks
    await a.start(CALL);
    const writes: Promise<unknown>[] = [];
    for (let i = 0; i < 30; i++) {
      const store = i % 2 ? a : b;
      writes.push(store.addUnlock("c1", { uid: `u${i}`, at: iso(i), result: "success" }));
    }
    writes.push(a.update("c1", { answeredAt: iso(1) }), b.update("c1", { talkAt: iso(2) }));
    writes.push(b.update("c1", { endedAt: iso(3), endReason: "door hung up" }));
    await Promise.all(writes);
    const r = await a.get("c1");
    assertEquals(r?.unlocks.length, 30);
    assertEquals(new Set(r?.unlocks.map((u) => u.uid)).size, 30);
    assertEquals([r?.answeredAt, r?.talkAt, r?.endedAt], [iso(1), iso(2), iso(3)]);
  });
});

Deno.test("records: unlocks per call are capped, the newest kept", async () => {
  await withKv(async (kv) => {
    const store = new RecordStore(kv);
    await store.start(CALL);
    for (let i = 0; i < MAX_UNLOCKS_PER_CALL + 5; i++) {
      await store.addUnlock("c1", { uid: `u${i}`, at: iso(i), result: "rate_limited" });
    }
    const r = await store.get("c1");
    assertEquals(r?.unlocks.length, MAX_UNLOCKS_PER_CALL);
    assertEquals(r?.unlocks.at(-1)?.uid, `u${MAX_UNLOCKS_PER_CALL + 4}`);
  });
});

Deno.test("records: recent lists newest first, with a limit", async () => {
  await withKv(async (kv) => {
    const store = new RecordStore(kv);
    for (let i = 0; i < 25; i++) {
      await store.start({ ...CALL, callId: `c${i}`, ringAt: iso(i * 1000) });
    }
    const recent = await store.recent();
    assertEquals(recent.length, 20);
    assertEquals(recent[0]?.callId, "c24");
    assertEquals(recent[19]?.callId, "c5");
    assertEquals((await store.recent(3)).map((r) => r.callId), ["c24", "c23", "c22"]);
    assertEquals((await store.recent(100)).length, 25);
  });
});

Deno.test("records: the unlock audit keeps every attempt, newest first", async () => {
  await withKv(async (kv) => {
    const store = new RecordStore(kv, () => new Date(T0));
    const base = { roomAddress: "Y00010108090", doorAddress: "M00010100" };
    await store.auditUnlock({ ...base, uid: "u1", at: iso(1), result: "not_bound" });
    await store.auditUnlock({ ...base, uid: "u2", at: iso(2), result: "success", callId: "c1" });
    const e = await store.auditUnlock({
      ...base,
      uid: "u3",
      result: "door_timeout",
      reason: "3 s",
    });
    assertEquals(e.at, iso(0));
    assert(typeof e.id === "string" && e.id.length > 0);
    const list = await store.recentUnlocks();
    assertEquals(list.map((a) => [a.uid, a.result]), [
      ["u2", "success"],
      ["u1", "not_bound"],
      ["u3", "door_timeout"],
    ]);
    assertEquals(list[0]?.callId, "c1");
    assertEquals(list[2]?.reason, "3 s");
    assertEquals((await store.recentUnlocks(1)).length, 1);
    // Same millisecond: both kept.
    await store.auditUnlock({ ...base, uid: "u4", at: iso(2), result: "rate_limited" });
    assertEquals((await store.recentUnlocks(10)).length, 4);
  });
});

Deno.test("records: pruneOlderThan deletes old calls and audit entries only", async () => {
  await withKv(async (kv) => {
    const store = new RecordStore(kv);
    const day = 86_400_000;
    const base = { roomAddress: "Y00010108090", doorAddress: "M00010100", result: "success" };
    for (let i = 0; i < 300; i++) {
      await store.start({ ...CALL, callId: `old${i}`, ringAt: iso(-40 * day + i) });
    }
    await store.start({ ...CALL, callId: "new", ringAt: iso(-day) });
    await store.auditUnlock({ ...base, uid: "old", at: iso(-40 * day), result: "success" });
    await store.auditUnlock({ ...base, uid: "new", at: iso(-day), result: "success" });
    const pruned = await store.pruneOlderThan(30, new Date(T0));
    assertEquals(pruned, { calls: 300, unlocks: 1 });
    assertEquals((await store.recent(1000)).map((r) => r.callId), ["new"]);
    assertEquals(await store.get("old0"), undefined);
    assertEquals((await store.recentUnlocks()).map((a) => a.uid), ["new"]);
    assertEquals(await store.pruneOlderThan(30, new Date(T0)), { calls: 0, unlocks: 0 });
  });
});

Deno.test("records: survive closing and reopening the database", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/records.kv`;
    let kv = await Deno.openKv(path);
    let store = new RecordStore(kv);
    await store.start(CALL);
    await store.addUnlock("c1", { uid: "u1", at: iso(1), result: "success" });
    await store.auditUnlock({
      uid: "u1",
      roomAddress: "Y00010108090",
      doorAddress: "M00010100",
      at: iso(1),
      result: "success",
      callId: "c1",
    });
    kv.close();
    kv = await Deno.openKv(path);
    try {
      store = new RecordStore(kv);
      assertEquals((await store.get("c1"))?.unlocks.length, 1);
      assertEquals((await store.recent()).map((r) => r.callId), ["c1"]);
      assertEquals((await store.recentUnlocks())[0]?.callId, "c1");
    } finally {
      kv.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("records: writeBatch commits a batch in one atomic operation, in order, bad writes left out", async () => {
  await withKv(async (kv) => {
    const store = new RecordStore(kv);
    let commits = 0;
    const atomic = kv.atomic.bind(kv);
    kv.atomic = () => {
      const op = atomic();
      const commit = op.commit.bind(op);
      op.commit = () => (commits++, commit());
      return op;
    };
    const result = await store.writeBatch([
      { kind: "start", start: CALL },
      { kind: "update", callId: "c1", patch: { answeredAt: iso(1000) } },
      { kind: "unlock", callId: "c1", entry: { uid: "u1", at: iso(2000), result: "success" } },
      { kind: "update", callId: "c1", patch: { endedAt: iso(3000), endReason: "door_hung_up" } },
      { kind: "update", callId: "nope", patch: { endedAt: iso(3000) } },
      { kind: "update", callId: "c1", patch: { endedAt: "yesterday" } },
      {
        kind: "audit",
        input: {
          uid: "u1",
          roomAddress: "Y1",
          doorAddress: "M1",
          result: "success",
          at: iso(2000),
        },
      },
      { kind: "unoffered", door: "M00010100", reason: "busy", at: T0 },
      { kind: "unoffered", door: "M00010100", reason: "busy", at: T0 + 59 * 60_000 },
      { kind: "unoffered", door: "M00010100", reason: "no_phone_online", at: T0 + 3_600_000 },
    ]);
    assertEquals(commits, 1);
    assertEquals([result.written, result.rejected.length], [8, 1]);
    assert(/yesterday/.test(result.rejected[0]!.message), result.rejected[0]!.message);
    const r = (await store.get("c1"))!;
    assertEquals([r.answeredAt, r.endedAt, r.endReason, r.unlocks.length], [
      iso(1000),
      iso(3000),
      "door_hung_up",
      1,
    ]);
    assertEquals((await store.recent(5)).map((c) => c.callId), ["c1"]);
    assertEquals((await store.recentUnlocks(5)).length, 1);
    assertEquals(await store.unoffered(new Date(T0)), [
      { hour: iso(0), reason: "busy", door: "M00010100", count: 2 },
      { hour: iso(3_600_000), reason: "no_phone_online", door: "M00010100", count: 1 },
    ]);
    // A second batch on an existing call changes it (checked against its versionstamp).
    await store.writeBatch([{ kind: "start", start: { ...CALL, ringAt: iso(9) } }, {
      kind: "update",
      callId: "c1",
      patch: { talkAt: iso(1500) },
    }]);
    assertEquals([(await store.get("c1"))!.ringAt, (await store.get("c1"))!.talkAt], [
      iso(0),
      iso(1500),
    ]);
    await throwsType(
      () => store.writeBatch(Array.from({ length: 101 }, () => ({ kind: "start", start: CALL }))),
      /at most 100/,
    );
    // Counters are pruned with the records.
    await store.pruneOlderThan(0, new Date(T0 + 2 * 3_600_000));
    assertEquals(await store.unoffered(new Date(0)), []);
  });
});

Deno.test("records: writeBatch over the store's size limits is committed in parts", async () => {
  await withKv(async (kv) => {
    const store = new RecordStore(kv);
    // 50 calls, each with 100 unlocks of long reasons: ~1.2 MB, over one commit's 800 KiB.
    const starts = Array.from({ length: 50 }, (_, i) => ({
      kind: "start" as const,
      start: { ...CALL, callId: `c${i}` },
    }));
    await store.writeBatch(starts);
    const reason = "x".repeat(200);
    const unlocks = Array.from({ length: 50 }, (_, i) => ({
      kind: "unlock" as const,
      callId: `c${i}`,
      entry: { uid: "u1", at: iso(1), result: "fail" as const, reason },
    }));
    // Fill every call to the unlock limit: one batch through the store, then the rest copied in
    // directly (100 sequential batches took 76 s on the emulated aarch64 run).
    await store.writeBatch(unlocks);
    for (let i = 0; i < 50; i++) {
      const r = (await store.get(`c${i}`))!;
      const full = Array.from({ length: MAX_UNLOCKS_PER_CALL }, () => r.unlocks[0]!);
      await kv.set(["call", `c${i}`], { ...r, unlocks: full });
    }
    assertEquals((await store.get("c7"))!.unlocks.length, MAX_UNLOCKS_PER_CALL);
    const result = await store.writeBatch(
      Array.from({ length: 50 }, (_, i) => ({
        kind: "unlock" as const,
        callId: `c${i}`,
        entry: { uid: "u2", at: iso(2), result: "success" as const, reason },
      })),
    );
    assertEquals(result.written, 50);
    for (const id of ["c0", "c49"]) {
      const r = (await store.get(id))!;
      assertEquals([r.unlocks.length, r.unlocks.at(-1)!.uid], [MAX_UNLOCKS_PER_CALL, "u2"]);
    }
  });
});
