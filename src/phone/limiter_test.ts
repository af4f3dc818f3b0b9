import { assertEquals } from "../../tests/helpers/assert.ts";
import { FakeClock } from "../clock.ts";
import { TokenBucketLimiter } from "./limiter.ts";

Deno.test("limiter: burst then refill per minute, keys independent", () => {
  const clock = new FakeClock();
  const l = new TokenBucketLimiter(clock, {
    login: { burst: 3, perMinute: 6 },
    unlock: { burst: 1, perMinute: 1 },
  });
  const takes = () => Array.from({ length: 4 }, () => l.take("login", "uid:a"));
  assertEquals(takes(), [true, true, true, false]);
  assertEquals(l.take("login", "uid:b"), true);
  clock.advance(10_000); // one token back
  assertEquals(takes(), [true, false, false, false]);
  assertEquals([l.take("unlock", "uid:a"), l.take("unlock", "uid:a")], [true, false]);
});
