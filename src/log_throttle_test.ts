import { assertEquals } from "../tests/helpers/assert.ts";
import { FakeClock } from "./testing/mod.ts";
import { LogThrottle } from "./log_throttle.ts";

Deno.test("log throttle: one line per key per window, bounded", () => {
  const clock = new FakeClock();
  const t = new LogThrottle(clock, 60_000, 2);
  assertEquals([t.allow("a"), t.allow("a"), t.allow("b")], [true, false, true]);
  clock.advance(59_999);
  assertEquals(t.allow("a"), false);
  clock.advance(1);
  assertEquals(t.allow("a"), true);
  t.allow("c"); // over the bound: the oldest key ("b") is forgotten
  assertEquals(t.allow("b"), true);
});
