import { assertEquals } from "../../tests/helpers/assert.ts";
import { recordSubject, token, untoken } from "./subjects.ts";
import { bindingKey } from "./hub_bindings.ts";

Deno.test("cluster subjects: any uid becomes one subject token and back", () => {
  for (const uid of ["uid-1", "a.b", "*", ">", "住户#1", "x".repeat(64), "a/b=c"]) {
    const t = token(uid);
    assertEquals(/^[-_A-Za-z0-9]+$/.test(t), true, t);
    assertEquals(untoken(t), uid);
  }
  assertEquals(bindingKey("00010108090", "a.b").split(".").length, 2);
  assertEquals(recordSubject("gwA", "call", "c-1"), "rec.gwA.call.c-1");
});
