import { assertEquals } from "../../tests/helpers/assert.ts";
import { FakeClock } from "../testing/mod.ts";
import { ChartSampler, MINUTES_KEPT } from "./charts.ts";

Deno.test("charts: per-second rates each minute, bounded; calls per hour with empty hours filled", () => {
  const clock = new FakeClock();
  let n = 0;
  const sampler = new ChartSampler({
    clock,
    read: () => ({
      doorIn: n * 600,
      toPhones: n * 1200,
      phoneIn: 0,
      toDoor: 0,
      dropped: n,
      phonesOnline: 3,
    }),
  });
  sampler.start();
  for (let i = 0; i < MINUTES_KEPT + 5; i++) {
    n++;
    clock.advance(60_000);
  }
  const d = sampler.data();
  assertEquals(d.minutes.length, MINUTES_KEPT);
  assertEquals(
    [
      d.minutes[0]!.doorInPerS,
      d.minutes[0]!.toPhonesPerS,
      d.minutes[0]!.droppedPerS,
      d.minutes[0]!.phonesOnline,
    ],
    [10, 20, 0, 3],
  );
  const hour = 3600_000;
  const now = clock.wallNow();
  sampler.callStarted(now);
  sampler.callStarted(now);
  sampler.callStarted(now - 2 * hour);
  const hours = sampler.data().hours;
  assertEquals(hours.length, 24);
  assertEquals(hours.slice(-3).map((h) => h.calls), [1, 0, 2]);
  sampler.close();
});
