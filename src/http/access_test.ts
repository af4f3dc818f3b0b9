import { assertEquals } from "../../tests/helpers/assert.ts";
import { accessRule, allowed, inCidr, isLoopback, parseCidr } from "./access.ts";

Deno.test("CIDRs: parse, match, refuse what is not one", () => {
  const net = parseCidr("192.168.1.0/24")!;
  assertEquals([inCidr("192.168.1.77", net), inCidr("192.168.2.1", net)], [true, false]);
  assertEquals(inCidr("::ffff:192.168.1.9", net), true);
  assertEquals(inCidr("10.0.0.5", parseCidr("10.0.0.5")!), true);
  assertEquals(inCidr("10.0.0.6", parseCidr("10.0.0.5")!), false);
  assertEquals(inCidr("8.8.8.8", parseCidr("0.0.0.0/0")!), true);
  for (const bad of ["10.0.0.0/33", "10.0.0/8", "x", "10.0.0.0/8/1", "10.0.0.0/"]) {
    assertEquals(parseCidr(bad), undefined, bad);
  }
});

Deno.test("metrics access: loopback, the allow list, or the bearer token; nobody else", () => {
  const rule = accessRule(["192.168.1.0/24"], "s3cret-token-0123456789");
  assertEquals([isLoopback("127.0.0.1"), isLoopback("::1"), isLoopback("10.0.0.1")], [
    true,
    true,
    false,
  ]);
  assertEquals(allowed(rule, "127.0.0.9", null), true);
  assertEquals(allowed(rule, "192.168.1.5", null), true);
  assertEquals(allowed(rule, "10.1.1.1", null), false);
  assertEquals(allowed(rule, "10.1.1.1", "Bearer s3cret-token-0123456789"), true);
  assertEquals(allowed(rule, "10.1.1.1", "Bearer s3cret-token-012345678"), false);
  assertEquals(allowed(rule, "10.1.1.1", "Basic s3cret-token-0123456789"), false);
  assertEquals(allowed(accessRule([], undefined), "10.1.1.1", "Bearer "), false);
});
