import { assertEquals } from "../../tests/helpers/assert.ts";
import { type NamedInterfaceAddress, resolveInterface } from "./interfaces.ts";

const BOX: NamedInterfaceAddress[] = [
  { name: "lo", family: "IPv4", address: "127.0.0.1" },
  { name: "eth0", family: "IPv6", address: "fe80::1" },
  { name: "eth0", family: "IPv4", address: "10.0.0.2" },
  { name: "eth1", family: "IPv6", address: "fe80::2" },
  { name: "eth1", family: "IPv4", address: "192.168.1.10" },
  { name: "eth1", family: "IPv4", address: "192.168.1.11" },
  { name: "wg0", family: "IPv6", address: "fd00::1" },
];

Deno.test("resolveInterface: a name becomes the interface's first IPv4 address", () => {
  assertEquals(resolveInterface("eth1", BOX), { ok: true, address: "192.168.1.10" });
  assertEquals(resolveInterface("lo", BOX), { ok: true, address: "127.0.0.1" });
});

Deno.test("resolveInterface: an IPv4 address is kept as given", () => {
  assertEquals(resolveInterface("192.168.1.10", BOX), { ok: true, address: "192.168.1.10" });
  assertEquals(resolveInterface("10.9.9.9", []), { ok: true, address: "10.9.9.9" });
});

Deno.test("resolveInterface: an unknown name, or one with IPv6 only, lists the IPv4 interfaces", () => {
  assertEquals(resolveInterface("eth9", BOX), { ok: false, known: ["lo", "eth0", "eth1"] });
  assertEquals(resolveInterface("wg0", BOX), { ok: false, known: ["lo", "eth0", "eth1"] });
  assertEquals(resolveInterface("eth0", []), { ok: false, known: [] });
});
