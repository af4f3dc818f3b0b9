import { assertEquals } from "../../tests/helpers/assert.ts";
import { FakeClock } from "../testing/mod.ts";
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

Deno.test("limiter defaults: a building's phones behind one IP can all log in again after a restart", () => {
  const l = new TokenBucketLimiter(new FakeClock());
  let ok = 0;
  for (let i = 0; i < 250; i++) {
    if (l.take("login", `uid:phone-${i}`) && l.take("login", "ip:10.0.0.1")) ok++;
  }
  assertEquals(ok, 250);
  const tries = Array.from({ length: 12 }, () => l.take("login", "uid:phone-0"));
  assertEquals(tries.filter(Boolean).length, 9, "one uid still gets only its own burst");
});
