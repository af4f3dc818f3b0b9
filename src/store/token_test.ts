import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { hashToken, newToken, TOKEN_BYTES, tokenMatches } from "./token.ts";

Deno.test("token: newToken is 32 random bytes in base64url without padding", () => {
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const t = newToken();
    assert(/^[A-Za-z0-9_-]{43}$/.test(t), t);
    seen.add(t);
  }
  assertEquals(seen.size, 200);
  assertEquals(TOKEN_BYTES, 32);
  // 43 base64url characters decode to 32 bytes.
  const t = newToken().replaceAll("-", "+").replaceAll("_", "/") + "=";
  assertEquals(atob(t).length, 32);
});

Deno.test("token: hashToken is SHA-256 hex", async () => {
  assertEquals(
    await hashToken("abc"),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
  assertEquals(
    await hashToken(""),
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  );
  assertEquals((await hashToken("花苑")).length, 64);
});

Deno.test("token: tokenMatches accepts only the hashed token", async () => {
  const token = newToken();
  const hash = await hashToken(token);
  assert(await tokenMatches(token, hash));
  assert(!(await tokenMatches(token + "x", hash)));
  assert(!(await tokenMatches("", hash)));
  assert(!(await tokenMatches(token, hash.slice(0, 63))), "shorter stored hash");
  assert(!(await tokenMatches(token, hash + "0")), "longer stored hash");
  assert(!(await tokenMatches(token, "")));
  assert(!(await tokenMatches(token, hash.toUpperCase())));
  const flipped = hash.slice(0, 63) + (hash.endsWith("0") ? "1" : "0");
  assert(!(await tokenMatches(token, flipped)), "last digit differs");
});
