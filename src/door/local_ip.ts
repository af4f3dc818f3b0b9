/**
 * Which of our addresses a door should use to reach us: the local IPv4 address on the door's
 * subnet (the default of `--lan-ip`).
 *
 * @module
 */

import { parseIp } from "../protocol/address.ts";

/** The subset of `Deno.NetworkInterfaceInfo` used here. */
export interface InterfaceAddress {
  readonly family: "IPv4" | "IPv6";
  readonly address: string;
  readonly netmask: string;
}

function toInt(ip: string): number | undefined {
  const p = parseIp(ip);
  return p ? ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0 : undefined;
}

/**
 * Picks the local IPv4 address whose subnet holds `peerIp`; else the first non-loopback IPv4;
 * else `127.0.0.1`.
 */
export function pickLocalIp(interfaces: readonly InterfaceAddress[], peerIp: string): string {
  const peer = toInt(peerIp);
  const v4 = interfaces.filter((i) => i.family === "IPv4");
  if (peer !== undefined) {
    for (const i of v4) {
      const a = toInt(i.address);
      const m = toInt(i.netmask);
      if (a !== undefined && m !== undefined && ((a & m) >>> 0) === ((peer & m) >>> 0)) {
        return i.address;
      }
    }
  }
  return v4.find((i) => !i.address.startsWith("127."))?.address ?? "127.0.0.1";
}

/** How long {@linkcode localIpCache} trusts what it read, ms, and how many door IPs it holds. */
export const LOCAL_IP_CACHE = { maxAgeMs: 60_000, maxEntries: 1024 } as const;

/**
 * {@linkcode pickLocalIp} per door IP, cached: the interfaces are read again once the cache is a
 * minute old (a box may change address: DHCP, a new uplink) or holds 1,024 door IPs (a bound
 * whatever the LAN sends).
 */
export function localIpCache(
  interfaces: () => readonly InterfaceAddress[],
  now: () => number,
): (doorIp: string) => string {
  const cache = new Map<string, string>();
  let since = now();
  return (doorIp) => {
    const t = now();
    if (t - since > LOCAL_IP_CACHE.maxAgeMs) {
      cache.clear();
      since = t;
    }
    let ip = cache.get(doorIp);
    if (ip === undefined) {
      if (cache.size >= LOCAL_IP_CACHE.maxEntries) cache.clear();
      ip = pickLocalIp(interfaces(), doorIp);
      cache.set(doorIp, ip);
    }
    return ip;
  };
}
