import { assertEquals } from "../../tests/helpers/assert.ts";
import { nullLogger } from "../log.ts";
import { FakeClock } from "../testing/mod.ts";
import { Metrics } from "../metrics.ts";
import { RecordStore } from "./records.ts";
import { RecordWriter } from "./record_writer.ts";

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

Deno.test("record writer: on a full store the records wait and are written once it has room", async () => {
  const kv = await Deno.openKv(":memory:");
  const clock = new FakeClock();
  const real = new RecordStore(kv);
  let full = true;
  const refuse = <T>(f: () => Promise<T>): Promise<T> =>
    full ? Promise.reject(new TypeError("database or disk is full")) : f();
  const records = {
    start: (s: Parameters<RecordStore["start"]>[0]) => refuse(() => real.start(s)),
    update: (id: string, p: Parameters<RecordStore["update"]>[1]) =>
      refuse(() => real.update(id, p)),
    addUnlock: (id: string, u: Parameters<RecordStore["addUnlock"]>[1]) =>
      refuse(() => real.addUnlock(id, u)),
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
    full = false;
    clock.advance(5000);
    await w.flushed();
    assertEquals([w.health().state, (await real.get("c1"))?.endReason], ["ok", "door_hung_up"]);
  } finally {
    await w.close();
    kv.close();
  }
});
