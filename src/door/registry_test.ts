import { assert, assertEquals, assertThrows } from "../../tests/helpers/assert.ts";
import { FakeClock } from "../testing/mod.ts";
import { DoorRegistry } from "./registry.ts";

Deno.test("door registry: learned on first contact; the same address from another IP is rejected", () => {
  const learned: string[] = [];
  const r = new DoorRegistry({
    clock: new FakeClock(),
    onLearn: (a, ip) => learned.push(`${a}=${ip}`),
  });
  assert(r.admit("M00010100", "10.0.0.5"));
  assert(r.admit("M00010100", "10.0.0.5"));
  assert(!r.admit("M00010100", "10.0.0.66"));
  assert(r.admit("M00010200", "10.0.0.6"));
  assertEquals(learned, ["M0001010=10.0.0.5", "M0001020=10.0.0.6"]);
});

Deno.test("door registry: a learned door that went silent for an hour may move; a configured one never", () => {
  const clock = new FakeClock();
  const r = new DoorRegistry({ clock, allowlist: ["M00010100=10.0.0.5", "M00010200"] });
  assert(!r.admit("M00010300", "10.0.0.7"), "not in the allowlist");
  assert(r.admit("M00010200", "10.0.0.6"), "listed without IP: learned");
  clock.advance(3_600_000);
  assert(!r.admit("M00010100", "10.0.0.9"), "fixed IP");
  assert(r.admit("M00010200", "10.0.0.8"), "silent for an hour: re-learned");
  assertThrows(() => new DoorRegistry({ clock, allowlist: ["M1=300.1.1.1"] }), RangeError);
});
