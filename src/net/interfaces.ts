/**
 * The box's interfaces as the door port needs them: `--multicast-interface` may name the
 * interface (`eth1`) or give its IPv4 address, and the multicast join needs the address
 * ({@linkcode resolveInterface}); without it the group is joined on every interface that can hear
 * doors ({@linkcode multicastJoins}). Pure: the caller passes `Deno.networkInterfaces()` and the
 * link flags (`link_flags.ts`).
 *
 * @module
 */

import { parseIp } from "../protocol/address.ts";

/** The subset of `Deno.NetworkInterfaceInfo` used here. */
export interface NamedInterfaceAddress {
  readonly name: string;
  readonly family: "IPv4" | "IPv6";
  readonly address: string;
}

/** What {@linkcode resolveInterface} found. */
export type InterfaceResolution =
  | { readonly ok: true; readonly address: string }
  | { readonly ok: false; readonly known: readonly string[] };

/**
 * The IPv4 address to join a multicast group on for `nameOrAddress`: an IPv4 address as given
 * (the kernel checks it at the join), else the first IPv4 address of the interface with that
 * name. When no interface of that name has an IPv4 address, the names of those that have one.
 *
 * @example
 * ```ts
 * resolveInterface("eth1", [{ name: "eth1", family: "IPv4", address: "192.168.1.10" }]);
 * // { ok: true, address: "192.168.1.10" }
 * ```
 */
export function resolveInterface(
  nameOrAddress: string,
  interfaces: readonly NamedInterfaceAddress[],
): InterfaceResolution {
  if (parseIp(nameOrAddress)) return { ok: true, address: nameOrAddress };
  const v4 = interfaces.filter((i) => i.family === "IPv4");
  const hit = v4.find((i) => i.name === nameOrAddress);
  if (hit) return { ok: true, address: hit.address };
  return { ok: false, known: [...new Set(v4.map((i) => i.name))] };
}

/** Linux `IFF_*` link flags used here (`/sys/class/net/NAME/flags`). */
export const LINK_FLAG = { UP: 0x1, LOOPBACK: 0x8, MULTICAST: 0x1000 } as const;

/** One interface the group is joined on: its name (when known) and the local IPv4 joined on. */
export interface MulticastJoin {
  /** `undefined` for `0.0.0.0` (the kernel's choice) or an address no interface has. */
  readonly name: string | undefined;
  readonly address: string;
}

/** The kernel's choice: the interface its routes send the group to (the default route's). */
export const KERNEL_CHOICE: MulticastJoin = Object.freeze({ name: undefined, address: "0.0.0.0" });

function isLoopbackAddress(address: string): boolean {
  return parseIp(address)?.[0] === 127;
}

/**
 * Where to join the name-resolution group:
 * - `chosen` (the resolved `--multicast-interface`, else `--lan-ip`): on that address alone;
 * - else on every interface with an IPv4 address that is up, not loopback and multicast-capable
 *   (one join per interface, on its first IPv4 address), in the order of `interfaces`; flags
 *   that cannot be read (`undefined`) do not exclude an interface;
 * - else (loopback only, as in the test namespace): {@linkcode KERNEL_CHOICE}.
 *
 * @example
 * ```ts
 * multicastJoins(undefined, [
 *   { name: "lo", family: "IPv4", address: "127.0.0.1" },
 *   { name: "eth0", family: "IPv4", address: "10.0.0.2" },
 *   { name: "eth1", family: "IPv4", address: "192.168.1.10" },
 * ], () => LINK_FLAG.UP | LINK_FLAG.MULTICAST);
 * // [{ name: "eth0", address: "10.0.0.2" }, { name: "eth1", address: "192.168.1.10" }]
 * ```
 */
export function multicastJoins(
  chosen: string | undefined,
  interfaces: readonly NamedInterfaceAddress[],
  flagsOf: (name: string) => number | undefined,
): MulticastJoin[] {
  const v4 = interfaces.filter((i) => i.family === "IPv4");
  if (chosen !== undefined) {
    return [{ name: v4.find((i) => i.address === chosen)?.name, address: chosen }];
  }
  const joins: MulticastJoin[] = [];
  const seen = new Set<string>();
  for (const i of v4) {
    if (seen.has(i.name) || isLoopbackAddress(i.address)) continue;
    const flags = flagsOf(i.name);
    if (
      flags !== undefined &&
      (!(flags & LINK_FLAG.UP) || flags & LINK_FLAG.LOOPBACK || !(flags & LINK_FLAG.MULTICAST))
    ) {
      continue;
    }
    seen.add(i.name);
    joins.push({ name: i.name, address: i.address });
  }
  return joins.length > 0 ? joins : [KERNEL_CHOICE];
}

/** `eth1 192.168.1.10, eth0 10.0.0.2` (for the start log); the kernel's choice says so. */
export function describeJoins(joins: readonly MulticastJoin[]): string {
  return joins.map((j) =>
    j.address === KERNEL_CHOICE.address
      ? "the kernel's choice (0.0.0.0: the interface of the route to the group)"
      : `${j.name ?? "?"} ${j.address}`
  ).join(", ");
}
