import { assertEquals, assertThrows } from "../../tests/helpers/assert.ts";
import { MemoryDoorQuirks } from "./door_quirks.ts";

Deno.test("door quirks: remembered per door, bounded by forgetting the oldest", () => {
  const q = new MemoryDoorQuirks(2);
  assertEquals(q.needsTalkForUnlock("M00010100"), false);
  q.setNeedsTalkForUnlock("M00010100");
  q.setNeedsTalkForUnlock("M00010100");
  assertEquals([q.needsTalkForUnlock("M00010100"), q.size], [true, 1]);
  q.setNeedsTalkForUnlock("M00010200");
  q.setNeedsTalkForUnlock("M00010300");
  assertEquals(
    ["M00010100", "M00010200", "M00010300"].map((d) => q.needsTalkForUnlock(d)),
    [false, true, true],
  );
  assertThrows(() => new MemoryDoorQuirks(0), RangeError);
});
