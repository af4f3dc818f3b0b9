import { assertEquals } from "../../tests/helpers/assert.ts";
import { type InterfaceAddress, pickLocalIp } from "./local_ip.ts";

/** A multi-homed box as `Deno.networkInterfaces()` lists it: uplink first, doors on eth1. */
const BOX: InterfaceAddress[] = [
  { family: "IPv4", address: "127.0.0.1", netmask: "255.0.0.0" },
  { family: "IPv4", address: "10.0.0.2", netmask: "255.255.255.0" },
  { family: "IPv6", address: "fe80::1", netmask: "ffff:ffff:ffff:ffff::" },
  { family: "IPv4", address: "192.168.77.1", netmask: "255.255.255.0" },
  { family: "IPv4", address: "172.16.4.9", netmask: "255.255.255.255" },
];

Deno.test("pickLocalIp: a door is answered with the address on its subnet, not the uplink's", () => {
  assertEquals(pickLocalIp(BOX, "192.168.77.21"), "192.168.77.1");
  assertEquals(pickLocalIp(BOX, "10.0.0.77"), "10.0.0.2");
  assertEquals(pickLocalIp(BOX, "127.0.0.2"), "127.0.0.1");
  assertEquals(pickLocalIp(BOX, "172.16.4.9"), "172.16.4.9");
});

Deno.test("pickLocalIp: a door on no local subnet gets the first non-loopback IPv4, else loopback", () => {
  assertEquals(pickLocalIp(BOX, "172.16.4.10"), "10.0.0.2");
  assertEquals(pickLocalIp(BOX, "not an ip"), "10.0.0.2");
  assertEquals(pickLocalIp([BOX[0]!], "192.168.77.21"), "127.0.0.1");
  assertEquals(pickLocalIp([], "192.168.77.21"), "127.0.0.1");
});
