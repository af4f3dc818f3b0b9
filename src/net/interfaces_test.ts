import { assertEquals } from "../../tests/helpers/assert.ts";
import {
  describeJoins,
  KERNEL_CHOICE,
  LINK_FLAG,
  multicastJoins,
  type NamedInterfaceAddress,
  resolveInterface,
} from "./interfaces.ts";

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

const UP = LINK_FLAG.UP | LINK_FLAG.MULTICAST;

Deno.test("multicastJoins: no flag: every IPv4 interface that is up, once each, never loopback", () => {
  const flags: Record<string, number> = {
    lo: LINK_FLAG.UP | LINK_FLAG.LOOPBACK,
    eth0: UP,
    eth1: UP,
  };
  assertEquals(multicastJoins(undefined, BOX, (n) => flags[n]), [
    { name: "eth0", address: "10.0.0.2" },
    { name: "eth1", address: "192.168.1.10" },
  ]);
});

Deno.test("multicastJoins: down or multicast-less interfaces are left out; unreadable flags are not", () => {
  const box: NamedInterfaceAddress[] = [
    ...BOX,
    { name: "wlan0", family: "IPv4", address: "172.16.0.5" },
    { name: "tun0", family: "IPv4", address: "10.8.0.1" },
  ];
  const flags: Record<string, number> = { eth0: UP, eth1: LINK_FLAG.MULTICAST, tun0: LINK_FLAG.UP };
  assertEquals(multicastJoins(undefined, box, (n) => flags[n]), [
    { name: "eth0", address: "10.0.0.2" },
    { name: "wlan0", address: "172.16.0.5" },
  ]);
});

Deno.test("multicastJoins: an address chosen by flag is joined alone, named when it is ours", () => {
  assertEquals(multicastJoins("192.168.1.11", BOX, () => UP), [
    { name: "eth1", address: "192.168.1.11" },
  ]);
  assertEquals(multicastJoins("10.9.9.9", BOX, () => UP), [{
    name: undefined,
    address: "10.9.9.9",
  }]);
});

Deno.test("multicastJoins: loopback only (the test namespace): the kernel's choice, as before", () => {
  const lo: NamedInterfaceAddress[] = [{ name: "lo", family: "IPv4", address: "127.0.0.1" }];
  assertEquals(multicastJoins(undefined, lo, () => undefined), [KERNEL_CHOICE]);
  assertEquals(multicastJoins(undefined, [], () => undefined), [KERNEL_CHOICE]);
});

Deno.test("describeJoins: names and addresses for the start log", () => {
  assertEquals(
    describeJoins([{ name: "eth1", address: "192.168.1.10" }, {
      name: "eth0",
      address: "10.0.0.2",
    }]),
    "eth1 192.168.1.10, eth0 10.0.0.2",
  );
  assertEquals(describeJoins([KERNEL_CHOICE]).startsWith("the kernel's choice (0.0.0.0"), true);
});
