import { assertEquals } from "../tests/helpers/assert.ts";
import { concatBytes } from "./bytes.ts";

Deno.test("concatBytes: the parts in order, copied", () => {
  const a = Uint8Array.of(1, 2);
  const b = new Uint8Array(0);
  const c = Uint8Array.of(3, 4, 5).subarray(1);
  const out = concatBytes(a, b, c);
  assertEquals([...out], [1, 2, 4, 5]);
  a[0] = 9;
  assertEquals(out[0], 1);
  assertEquals(out.buffer instanceof ArrayBuffer, true);
});

Deno.test("concatBytes: nothing gives an empty array", () => {
  assertEquals(concatBytes().length, 0);
});
