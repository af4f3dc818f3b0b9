import { assertEquals } from "../tests/helpers/assert.ts";
import { OnceFilter } from "./once.ts";

Deno.test("once filter: the first of each key only, bounded", () => {
  const f = new OnceFilter(2);
  assertEquals([f.first("a"), f.first("a"), f.first("b"), f.first("b")], [
    true,
    false,
    true,
    false,
  ]);
  assertEquals(f.first("c"), true); // full: starts over
  assertEquals([f.first("a"), f.first("c")], [true, false]);
});
