import { assertEquals } from "../../tests/helpers/assert.ts";
import { type InterfaceAddress, LOCAL_IP_CACHE, localIpCache, pickLocalIp } from "./local_ip.ts";

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

Deno.test("local IP cache: interfaces read once per minute, again after a change; bounded", () => {
  let t = 0;
  let reads = 0;
  let box: InterfaceAddress[] = [
    { family: "IPv4", address: "192.168.1.2", netmask: "255.255.255.0" },
  ];
  const ipFor = localIpCache(() => (reads++, box), () => t);
  assertEquals(ipFor("192.168.1.21"), "192.168.1.2");
  assertEquals(ipFor("192.168.1.21"), "192.168.1.2");
  assertEquals(reads, 1);
  // DHCP gave the box a new address: seen once the minute is over.
  box = [{ family: "IPv4", address: "192.168.1.9", netmask: "255.255.255.0" }];
  t = LOCAL_IP_CACHE.maxAgeMs - 1;
  assertEquals(ipFor("192.168.1.21"), "192.168.1.2");
  t = LOCAL_IP_CACHE.maxAgeMs + 1;
  assertEquals(ipFor("192.168.1.21"), "192.168.1.9");
  assertEquals(reads, 2);
  // The cache holds at most maxEntries door IPs: one more starts it afresh (192.168.1.21 is read
  // again) instead of growing it.
  for (let i = 1; i < LOCAL_IP_CACHE.maxEntries; i++) ipFor(`10.0.${i >> 8}.${i & 255}`);
  const full = reads;
  assertEquals(ipFor("192.168.1.21"), "192.168.1.9");
  assertEquals(reads, full, "still cached");
  ipFor("10.9.9.9");
  ipFor("192.168.1.21");
  assertEquals(reads, full + 2, "evicted by the bound");
});
