/**
 * The private network namespace that tests, benches and the demo run in (`unshare -rn`):
 * loopback only, with multicast routed on `lo`, so that no test datagram (and no IGMP report)
 * can leave the machine. One place for how it is set up, how a process knows it is inside, and
 * how a script re-runs itself there. Imported by `scripts/`, `bench/` and `tests/helpers/`;
 * imports nothing of theirs.
 *
 * @module
 */

import { fileURLToPath } from "node:url";

/** Shell commands that make the fresh namespace's loopback usable, multicast included. */
export const NETNS_SETUP = "ip link set lo up multicast on && ip route add 224.0.0.0/4 dev lo";

/** The environment variable set to `1` inside the namespace. */
export const NETNS_ENV = "INTERCOM_IN_NETNS";

/**
 * A local route without a preferred source for 127.1.0.0/16: a connection to 127.1.x.y then
 * comes *from* 127.1.x.y, so each simulated phone has its own source IP (the gateway rate-limits
 * logins per IP). 127.0.0.0/8 keeps its source 127.0.0.1, which the door simulators rely on.
 */
export const PHONE_ROUTE = "ip route replace local 127.1.0.0/16 dev lo table local";

function detect(): boolean {
  try {
    return Deno.env.get(NETNS_ENV) === "1";
  } catch {
    // no --allow-env: certainly not started inside the namespace by our scripts
    return false;
  }
}

/** True inside the namespace (`INTERCOM_IN_NETNS=1`, set by whoever entered it). */
export const inNetns: boolean = detect();

/** Quotes one argument for `sh -c` (bare when it is safe as it is). */
export function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

/**
 * The command line that runs `argv` inside the namespace: `sh -c` when already inside, else
 * `unshare -rn sh -c` after {@linkcode NETNS_SETUP} and `setup` (more shell commands, e.g.
 * {@linkcode PHONE_ROUTE}). `exec`: the shell replaces itself with `argv`.
 */
export function netnsCommand(
  argv: readonly string[],
  options: { setup?: readonly string[]; exec?: boolean } = {},
): string[] {
  const inner = (options.exec ? "exec " : "") + argv.map(shellQuote).join(" ");
  if (inNetns) return ["sh", "-c", inner];
  const setup = [NETNS_SETUP, ...(options.setup ?? [])].join(" && ");
  return ["unshare", "-rn", "sh", "-c", `${setup} && ${inner}`];
}

/**
 * Makes sure the caller runs inside the namespace: outside, re-runs `script` as
 * `deno run <denoFlags> script <Deno.args>` under `unshare -rn` with stdio inherited, and exits
 * with its code; inside, returns. `phoneRoute`: the namespace also gets {@linkcode PHONE_ROUTE}
 * (added inside too; throws when `ip` refuses).
 */
export async function ensureNetns(
  script: string | URL,
  denoFlags: readonly string[],
  options: { phoneRoute?: boolean } = {},
): Promise<void> {
  if (inNetns) {
    if (options.phoneRoute && !(await addPhoneRoute())) {
      throw new Error(`Cannot add the phone route (${PHONE_ROUTE}): not root in this namespace?`);
    }
    return;
  }
  const path = script instanceof URL || script.startsWith("file:") ? fileURLToPath(script) : script;
  const [cmd, ...args] = netnsCommand([Deno.execPath(), "run", ...denoFlags, path, ...Deno.args], {
    setup: options.phoneRoute ? [PHONE_ROUTE] : [],
    exec: true,
  });
  const child = new Deno.Command(cmd!, {
    args,
    env: { [NETNS_ENV]: "1" },
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  Deno.exit((await child.status).code);
}

/** Adds {@linkcode PHONE_ROUTE} (inside the namespace); false when `ip` refuses. */
export async function addPhoneRoute(): Promise<boolean> {
  try {
    const out = await new Deno.Command("sh", {
      args: ["-c", PHONE_ROUTE],
      stdout: "null",
      stderr: "null",
    }).output();
    return out.success;
  } catch {
    return false;
  }
}

/** The loopback IP phone `i` connects to (and, with the phone route, from): 127.1.x.y. */
export function phoneIp(i: number): string {
  return `127.1.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`;
}
