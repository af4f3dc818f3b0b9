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

Deno.test("limiter: a refund gives a token back, never beyond the burst", () => {
  const l = new TokenBucketLimiter(new FakeClock(), {
    login: { burst: 2, perMinute: 1 },
    unlock: { burst: 1, perMinute: 1 },
  });
  assertEquals([l.take("login", "k"), l.take("login", "k"), l.take("login", "k")], [
    true,
    true,
    false,
  ]);
  l.refund("login", "k");
  assertEquals([l.take("login", "k"), l.take("login", "k")], [true, false]);
  l.refund("login", "other");
  l.refund("login", "other");
  const takes = Array.from({ length: 3 }, () => l.take("login", "other"));
  assertEquals(takes, [true, true, false]);
});
