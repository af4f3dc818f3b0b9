/**
 * `--multicast-interface` may name the interface (`eth1`) or give its IPv4 address; the multicast
 * join needs the address. Pure: the caller passes `Deno.networkInterfaces()`.
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
