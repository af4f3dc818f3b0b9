import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { FakeClock } from "../testing/mod.ts";
import { AuditAggregator, type AuditRow, type UnlockAttempt } from "./audit_aggregator.ts";

function setup(options: { maxGroups?: number; hold?: boolean } = {}) {
  const clock = new FakeClock();
  const writes: AuditRow[] = [];
  const held: (() => void)[] = [];
  let n = 0;
  const agg = new AuditAggregator({
    clock,
    flushMs: 1000,
    newId: () => `id${n++}`,
    ...(options.maxGroups !== undefined ? { maxGroups: options.maxGroups } : {}),
    write: (row) => {
      writes.push(row);
      return options.hold ? new Promise<void>((r) => held.push(r)) : Promise.resolve();
    },
  });
  const attempt = (result: UnlockAttempt["result"], uid = "p1"): UnlockAttempt => ({
    type: "unlock_attempted",
    at: clock.wallNow(),
    uid,
    roomAddress: "Y00010108090",
    doorAddress: "M00010100",
    result,
    ...(result === "success" ? { callId: "c1" } : {}),
  });
  return { clock, agg, writes, held, attempt };
}

const settle = () => new Promise((r) => setTimeout(r, 0));

Deno.test("audit aggregator: every real attempt has its own row; a flood of refusals one counted row", async () => {
  const { clock, agg, writes, attempt } = setup();
  agg.add(attempt("success"), "10.0.0.9");
  agg.add(attempt("success"));
  for (let i = 0; i < 37_000; i++) agg.add(attempt("rate_limited"));
  // The first refusal is visible at once; the count follows within a second.
  assertEquals(writes.map((w) => [w.result, w.count]), [
    ["success", undefined],
    ["success", undefined],
    ["rate_limited", undefined],
  ]);
  assertEquals(writes[0]!.ip, "10.0.0.9");
  await settle();
  clock.advance(1000);
  assertEquals(writes.length, 4);
  const last = writes[3]!;
  assertEquals([last.result, last.count, last.id, last.at], [
    "rate_limited",
    37_000,
    writes[2]!.id,
    writes[2]!.at,
  ]);
  // Nothing more to say: no timer, no write.
  clock.advance(5000);
  assertEquals([writes.length, clock.pending], [4, 0]);
});

Deno.test("audit aggregator: one row per uid, result and minute", async () => {
  const { clock, agg, writes, attempt } = setup();
  agg.add(attempt("not_in_call", "a"));
  agg.add(attempt("not_in_call", "b"));
  agg.add(attempt("rate_limited", "a"));
  agg.add(attempt("rate_limited", "a"));
  clock.advance(60_000); // the next minute: a new row
  agg.add(attempt("rate_limited", "a"));
  await settle();
  clock.advance(1000);
  const rows = new Map(writes.map((w) => [w.id, w])); // the latest version of each row
  assertEquals(
    [...rows.values()].map((w) => [w.uid, w.result, w.count ?? 1]),
    [["a", "not_in_call", 1], ["b", "not_in_call", 1], ["a", "rate_limited", 2], [
      "a",
      "rate_limited",
      1,
    ]],
  );
  // Written groups of past minutes are forgotten.
  assert(agg.size <= 1, `remembers ${agg.size} groups`);
});

Deno.test("audit aggregator: a row is not rewritten while its last write is pending; close writes the count", async () => {
  const { clock, agg, writes, held, attempt } = setup({ hold: true });
  agg.add(attempt("rate_limited"));
  agg.add(attempt("rate_limited"));
  clock.advance(1000);
  assertEquals(writes.length, 1, "the first write is still pending");
  held.shift()!();
  await settle();
  clock.advance(1000);
  assertEquals(writes.map((w) => w.count), [undefined, 2]);
  const closing = agg.close();
  held.shift()!();
  await closing;
  assertEquals(clock.pending, 0);
});

Deno.test("audit aggregator: bounded; beyond its groups an attempt gets a row of its own", () => {
  const { agg, writes, attempt } = setup({ maxGroups: 2 });
  for (const uid of ["a", "b", "c", "c"]) agg.add(attempt("not_bound", uid));
  assertEquals(agg.size, 2);
  assertEquals(writes.map((w) => w.uid), ["a", "b", "c", "c"]);
});
