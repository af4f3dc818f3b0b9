/**
 * The names and addresses a phone may reach the gateway by, for its server certificate: the
 * host name (from `/etc/hostname`: no extra permission), `<host>.local`, `localhost`, and every
 * IPv4 address of the box's interfaces (plus `--lan-ip`).
 *
 * @module
 */

/** Host names and IPv4 addresses of this box. */
export interface LanNames {
  readonly dnsNames: string[];
  readonly ips: string[];
}

const HOST = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** The names of this box; `lanIp` is added when given. Never throws. */
export async function lanNames(lanIp?: string): Promise<LanNames> {
  const dnsNames = ["localhost"];
  try {
    const host = (await Deno.readTextFile("/etc/hostname")).trim().toLowerCase().split(".")[0]!;
    if (HOST.test(host) && host !== "localhost") dnsNames.push(host, `${host}.local`);
  } catch {
    // no /etc/hostname (or not readable): addresses only
  }
  const ips = new Set<string>(["127.0.0.1"]);
  if (lanIp) ips.add(lanIp);
  try {
    for (const i of Deno.networkInterfaces()) if (i.family === "IPv4") ips.add(i.address);
  } catch {
    // no --allow-sys=networkInterfaces: loopback and --lan-ip only
  }
  return { dnsNames, ips: [...ips] };
}
