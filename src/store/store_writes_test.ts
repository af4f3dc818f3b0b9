import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { FakeClock, memoryLogger } from "../testing/mod.ts";
import { Metrics } from "../metrics.ts";
import { classifyFailure, StoreWrites } from "./store_writes.ts";

const FULL = () => Promise.reject(new TypeError("database or disk is full"));
const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 0));
};

function setup(maxQueued?: number) {
  const clock = new FakeClock();
  const logger = memoryLogger("info");
  const metrics = new Metrics();
  const writes = new StoreWrites({
    clock,
    logger,
    metrics,
    retryMs: 5000,
    ...(maxQueued !== undefined ? { maxQueued } : {}),
  });
  let full = false;
  const written: number[] = [];
  const write = (n: number) => () => full ? FULL() : Promise.resolve(void written.push(n));
  return { clock, logger, metrics, writes, written, write, setFull: (v: boolean) => (full = v) };
}

Deno.test("store writes: a full disk is visible; writes wait in memory and land in order once it has room", async () => {
  const t = setup();
  t.writes.run(t.write(1));
  await settle();
  t.setFull(true);
  for (let n = 2; n <= 100; n++) t.writes.run(t.write(n));
  await settle();
  const h = t.writes.health();
  assert(h.state === "full", JSON.stringify(h));
  assertEquals([h.reason, h.queued], ["database or disk is full", 99]);
  assert(t.metrics.get("store_write_failures_total", { reason: "full" }) >= 1);
  assert(t.metrics.render().includes("record_writes_queued 99"));
  // Retried every 5 s; one error line a minute, not one per failure.
  for (let i = 0; i < 30; i++) {
    t.clock.advance(5000);
    await settle();
  }
  const errors = t.logger.records.filter((r) => r.level === "error");
  assertEquals(errors.length, 3, JSON.stringify(errors));
  assertEquals(errors[0]!.reason, "database or disk is full");
  assertEquals([t.writes.health().state, t.written], ["full", [1]]);
  t.setFull(false);
  t.clock.advance(5000);
  await settle();
  assertEquals(t.written, Array.from({ length: 100 }, (_, i) => i + 1));
  assertEquals([t.writes.health(), t.writes.pending, t.clock.pending], [{ state: "ok" }, 0, 0]);
  assert(t.logger.records.some((r) => r.msg === "the store accepts writes again"));
  await t.writes.close();
});

Deno.test("store writes: a write refused for its content is dropped, not retried", async () => {
  const t = setup();
  const done = t.writes.run(() => Promise.reject(new TypeError("Cannot record call: bad field")));
  await done;
  assertEquals([t.writes.health().state, t.writes.pending], ["ok", 0]);
  assertEquals(t.metrics.get("store_write_failures_total", { reason: "invalid" }), 1);
  assertEquals(t.metrics.get("record_writes_failed_total"), 1);
  assertEquals(classifyFailure(new Error("No space left on device (os error 28)")), "full");
  assertEquals(classifyFailure(new Error("disk I/O error")), "error");
});

Deno.test("store writes: bounded while the store refuses; what still waits at close is lost and counted", async () => {
  const t = setup(10);
  t.setFull(true);
  const all = Array.from({ length: 20 }, (_, n) => t.writes.run(t.write(n)));
  await settle();
  assertEquals(t.writes.pending, 10);
  assertEquals(t.metrics.get("record_writes_dropped_total"), 10);
  await t.writes.close();
  await Promise.all(all); // every promise settles
  assertEquals([t.writes.pending, t.metrics.get("record_writes_failed_total"), t.clock.pending], [
    0,
    10,
    0,
  ]);
  assert(t.logger.records.some((r) => String(r.msg).includes("still refuses writes at stop")));
});

Deno.test("store writes: a write that was running when the store failed goes back before later ones", async () => {
  const t = setup();
  const order: string[] = [];
  let release!: () => void;
  const slow = new Promise<void>((r) => (release = r));
  let full = true;
  const w = (name: string, wait?: Promise<void>) => async () => {
    await wait;
    if (full) throw new TypeError("database or disk is full");
    order.push(name);
  };
  t.writes.run(w("start c1", slow)); // still running when another write fails
  t.writes.run(w("start c2"));
  await settle();
  t.writes.run(w("update c1")); // queued behind the failure
  release();
  await settle();
  full = false;
  t.clock.advance(5000);
  await t.writes.flushed();
  assertEquals(order, ["start c1", "start c2", "update c1"]);
  await t.writes.close();
});
