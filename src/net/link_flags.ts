/**
 * An interface's link flags (`IFF_UP`, `IFF_LOOPBACK`, `IFF_MULTICAST`, …) from Linux's
 * `/sys/class/net/NAME/flags`: `Deno.networkInterfaces()` lists interfaces that are down too and
 * says nothing of their state.
 *
 * @module
 */

/**
 * The flags of interface `name`, or `undefined` when they cannot be read (not Linux, no read
 * permission, an odd name).
 */
export function readLinkFlags(name: string): number | undefined {
  if (!/^[\w.@:-]{1,15}$/.test(name)) return undefined;
  try {
    const text = Deno.readTextFileSync(`/sys/class/net/${name}/flags`).trim();
    const flags = Number.parseInt(text.replace(/^0x/i, ""), 16);
    return Number.isFinite(flags) ? flags : undefined;
  } catch {
    return undefined;
  }
}
