import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { nullLogger } from "../log.ts";
import { FakeClock } from "../testing/mod.ts";
import { Metrics } from "../metrics.ts";
import type { GatewayEvent } from "../events/types.ts";
import { RecordStore, type RecordWrite } from "./records.ts";
import { BATCH_SIZE, FLUSH_MS, MAX_QUEUED, RecordWriter } from "./record_writer.ts";

const at = Date.UTC(2026, 11, 1, 20, 0, 0);

Deno.test("record writer: a call's events become its record; every unlock attempt reaches the audit", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const records = new RecordStore(kv);
    const w = new RecordWriter({
      records,
      logger: nullLogger,
      metrics: new Metrics(),
      ipOf: (uid) => (uid === "a" ? "10.0.0.9" : undefined),
    });
    const common = { doorAddress: "M00010100", roomAddress: "Y00010108090" };
    w.onEvent({
      type: "call_started",
      at,
      callId: "c1",
      doorIp: "10.0.0.5",
      roomKey: "00010108090",
      ...common,
      roomAddress: "S00010108090",
    });
    w.onEvent({ type: "call_answered", at: at + 1000, callId: "c1", uid: "a" });
    w.onEvent({ type: "call_talk", at: at + 2000, callId: "c1", uid: "a" });
    w.onEvent({
      type: "unlock_attempted",
      at: at + 3000,
      uid: "a",
      callId: "c1",
      result: "success",
      ...common,
    });
    w.onEvent({
      type: "unlock_attempted",
      at: at + 4000,
      uid: "x",
      result: "not_bound",
      ip: "10.0.0.66",
      ...common,
    });
    w.onEvent({
      type: "call_ended",
      at: at + 5000,
      callId: "c1",
      roomKey: "00010108090",
      reason: "phone_hung_up",
    });
    await w.flushed();
    const r = (await records.get("c1"))!;
    assertEquals(
      [r.door, r.doorIp, r.ringAt, r.answeredAt, r.talkAt, r.answeredBy, r.endedAt, r.endReason],
      [
        "M00010100",
        "10.0.0.5",
        "2026-12-01T20:00:00.000Z",
        "2026-12-01T20:00:01.000Z",
        "2026-12-01T20:00:02.000Z",
        "a",
        "2026-12-01T20:00:05.000Z",
        "phone_hung_up",
      ],
    );
    assertEquals(r.unlocks.map((u) => [u.uid, u.result]), [["a", "success"]]);
    const audit = await records.recentUnlocks(10);
    assertEquals(audit.map((u) => [u.uid, u.result, u.ip, u.callId]), [
      ["x", "not_bound", "10.0.0.66", undefined],
      ["a", "success", "10.0.0.9", "c1"],
    ]);
  } finally {
    kv.close();
  }
});

/** A RecordStore that counts its batches. */
function counting(records: RecordStore) {
  const batches: number[] = [];
  return {
    batches,
    writeBatch: (writes: readonly RecordWrite[]) => {
      batches.push(writes.length);
      return records.writeBatch(writes);
    },
    auditUnlock: records.auditUnlock.bind(records),
  };
}

function started(i: number, door = "M00010100"): GatewayEvent {
  return {
    type: "call_started",
    at: at + i,
    callId: `c${i}`,
    doorAddress: door,
    doorIp: "10.0.0.5",
    roomAddress: "S00010108090",
    roomKey: "00010108090",
  };
}

function ended(i: number, reason: "no_phone_online" | "phone_hung_up"): GatewayEvent {
  return { type: "call_ended", at: at + i, callId: `c${i}`, roomKey: "00010108090", reason };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

Deno.test("record writer: writes are batched, 100 per commit at once or after 100 ms, one batch at a time", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const clock = new FakeClock();
    const store = counting(new RecordStore(kv));
    const w = new RecordWriter({
      records: store,
      logger: nullLogger,
      metrics: new Metrics(),
      clock,
    });
    for (let i = 0; i < 3; i++) w.onEvent(started(i));
    await tick();
    assertEquals(store.batches, [], "a partial batch waits for its timer");
    clock.advance(FLUSH_MS);
    await w.flushed();
    assertEquals(store.batches, [3]);
    // A burst of 250 calls (start + end each): full batches go at once, the rest after 100 ms.
    for (let i = 10; i < 260; i++) {
      w.onEvent(started(i));
      w.onEvent(ended(i, "phone_hung_up"));
    }
    assertEquals(w.pending, 500);
    while (store.batches.length < 6) await tick();
    assertEquals(store.batches, [3, 100, 100, 100, 100, 100]);
    assertEquals(clock.pending, 0, "no timer while full batches are written");
    await w.close();
    assertEquals(clock.pending, 0);
    assertEquals((await new RecordStore(kv).recent(1000)).length, 253);
    assertEquals((await new RecordStore(kv).get("c259"))?.endReason, "phone_hung_up");
  } finally {
    kv.close();
  }
});

Deno.test("record writer: the queue is bounded; the excess is dropped and counted; close() writes what was accepted", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const metrics = new Metrics();
    const clock = new FakeClock();
    const records = new RecordStore(kv);
    // A store that does not answer until released: the queue fills.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const w = new RecordWriter({
      records: {
        writeBatch: async (b) => (await gate, records.writeBatch(b)),
        auditUnlock: (u) => records.auditUnlock(u),
      },
      logger: nullLogger,
      metrics,
      clock,
    });
    for (let i = 0; i < MAX_QUEUED + BATCH_SIZE + 500; i++) w.onEvent(started(i));
    assertEquals(metrics.get("record_writes_dropped_total"), 500);
    assertEquals(w.pending, MAX_QUEUED + BATCH_SIZE);
    const closing = w.close();
    release();
    await closing;
    assertEquals(w.pending, 0);
    let stored = 0;
    for await (const _ of kv.list({ prefix: ["call"] })) stored++;
    assertEquals(stored, MAX_QUEUED + BATCH_SIZE);
    w.onEvent(started(99_999));
    assertEquals(metrics.get("record_writes_dropped_total"), 501, "after close: counted");
    assertEquals(clock.pending, 0);
  } finally {
    kv.close();
  }
});

Deno.test("record writer: calls no phone was offered are counted per door and hour, not recorded", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const records = new RecordStore(kv);
    const w = new RecordWriter({ records, logger: nullLogger, metrics: new Metrics() });
    for (let i = 0; i < 50; i++) {
      w.onEvent(started(i));
      w.onEvent(ended(i, "no_phone_online"));
    }
    w.onEvent({
      type: "call_refused",
      at,
      doorAddress: "M00010200",
      doorIp: "10.0.0.6",
      roomAddress: "S00010108090",
      reason: "busy",
    });
    // A call that rang is recorded as ever.
    w.onEvent(started(100));
    w.onEvent(ended(100, "phone_hung_up"));
    await w.close();
    assertEquals((await records.recent(100)).map((r) => r.callId), ["c100"]);
    assertEquals(await records.unoffered(new Date(at)), [
      { hour: "2026-12-01T20:00:00.000Z", reason: "busy", door: "M00010200", count: 1 },
      { hour: "2026-12-01T20:00:00.000Z", reason: "no_phone_online", door: "M00010100", count: 50 },
    ]);
  } finally {
    kv.close();
  }
});

Deno.test("record writer: unoffered counters name at most 256 doors an hour, the rest count as *", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const records = new RecordStore(kv);
    const w = new RecordWriter({ records, logger: nullLogger, metrics: new Metrics() });
    for (let i = 0; i < 300; i++) {
      w.onEvent(started(i, `M0001${String(i).padStart(4, "0")}`));
      w.onEvent(ended(i, "no_phone_online"));
    }
    await w.close();
    const counts = await records.unoffered(new Date(at));
    assertEquals(counts.length, 257);
    assertEquals(counts.find((c) => c.door === "*")?.count, 44);
    assert(counts.every((c) => c.reason === "no_phone_online"));
  } finally {
    kv.close();
  }
});

Deno.test("record writer: an unlock flood is a few counted audit rows; real attempts keep theirs", async () => {
  const kv = await Deno.openKv(":memory:");
  const clock = new FakeClock();
  const w = new RecordWriter({
    records: new RecordStore(kv),
    logger: nullLogger,
    metrics: new Metrics(),
    clock,
  });
  try {
    const common = { uid: "a", doorAddress: "M00010100", roomAddress: "Y00010108090" };
    const at = clock.wallNow();
    w.onEvent({ type: "unlock_attempted", at, callId: "c1", result: "success", ...common });
    for (let i = 0; i < 3; i++) {
      w.onEvent({ type: "unlock_attempted", at, result: "not_in_call", ...common });
    }
    for (let i = 0; i < 5000; i++) {
      w.onEvent({ type: "unlock_attempted", at: at + i, result: "rate_limited", ...common });
    }
    w.onEvent({ type: "unlock_attempted", at: at + 6000, callId: "c1", result: "fail", ...common });
    await w.flushed();
    const audit = await new RecordStore(kv).recentUnlocks(100);
    assertEquals(audit.map((u) => [u.result, u.count ?? 1]).sort(), [
      ["fail", 1],
      ["not_in_call", 3],
      ["rate_limited", 5000],
      ["success", 1],
    ]);
    const flood = audit.find((u) => u.result === "rate_limited")!;
    assertEquals([flood.at, flood.lastAt], [
      new Date(at).toISOString(),
      new Date(at + 4999).toISOString(),
    ]);
  } finally {
    await w.close();
    kv.close();
  }
});

Deno.test("record writer: a write refused for its content is dropped and counted; the rest of its batch is written", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const metrics = new Metrics();
    const records = new RecordStore(kv);
    const w = new RecordWriter({ records, logger: nullLogger, metrics });
    w.onEvent(started(1));
    w.onEvent({ ...started(2), doorAddress: "" } as GatewayEvent);
    w.onEvent(started(3));
    await w.close();
    assertEquals(metrics.get("record_writes_failed_total"), 1);
    assertEquals(metrics.get("store_write_failures_total", { reason: "invalid" }), 1);
    assertEquals((await records.recent(10)).map((r) => r.callId).sort(), ["c1", "c3"]);
  } finally {
    kv.close();
  }
});

Deno.test("record writer: on a full store the records wait and are written once it has room", async () => {
  const kv = await Deno.openKv(":memory:");
  const clock = new FakeClock();
  const real = new RecordStore(kv);
  let full = true;
  const refuse = <T>(f: () => Promise<T>): Promise<T> =>
    full ? Promise.reject(new TypeError("database or disk is full")) : f();
  const records = {
    writeBatch: (b: readonly RecordWrite[]) => refuse(() => real.writeBatch(b)),
    auditUnlock: (u: Parameters<RecordStore["auditUnlock"]>[0]) =>
      refuse(() => real.auditUnlock(u)),
  };
  const w = new RecordWriter({ records, logger: nullLogger, metrics: new Metrics(), clock });
  try {
    const common = { callId: "c1", roomKey: "00010108090" };
    w.onEvent({
      type: "call_started",
      at,
      doorAddress: "M00010100",
      doorIp: "10.0.0.5",
      roomAddress: "S00010108090",
      ...common,
    });
    w.onEvent({ type: "call_ended", at: at + 5000, reason: "door_hung_up", ...common });
    await w.flushed();
    assertEquals(w.health().state, "full");
    assertEquals(await real.get("c1"), undefined);
    // More comes in while the batch waits: it queues behind it.
    w.onEvent({ type: "call_answered", at: at + 6000, callId: "c1", uid: "u1" });
    full = false;
    clock.advance(5000);
    // The backlog is written as soon as the store takes the waiting batch, not a timer later.
    for (let i = 0; i < 20; i++) await new Promise((r) => setTimeout(r, 0));
    assertEquals(clock.pending, 0);
    const r = await kv.get<{ endReason?: string; answeredAt?: string }>(["call", "c1"]);
    assertEquals([w.health().state, r.value?.endReason, r.value?.answeredAt], [
      "ok",
      "door_hung_up",
      new Date(at + 6000).toISOString(),
    ]);
  } finally {
    await w.close();
    kv.close();
  }
});
