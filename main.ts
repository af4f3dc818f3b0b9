/**
 * The gateway's command line: `serve` (default), `sim door`, `sim phone`, `bind …`, `door …`,
 * `calls`, `backup …`, `restore …`, `migrate`, `schema`.
 *
 * Parse, validate, start: each subcommand lives in its own module and gets its arguments.
 *
 * @module
 */

import denoJson from "./deno.json" with { type: "json" };
import { eprintln, println } from "./src/print.ts";

/** The product version (from deno.json). */
export const VERSION: string = denoJson.version;

const USAGE = `intercom-gateway ${VERSION}: door stations ↔ residents' phones

Usage:
  intercom-gateway [serve] [flags]          run the gateway (flags: serve --help)
  intercom-gateway sim door [flags]         door-station simulator (sim door --help)
  intercom-gateway sim phone [flags]        phone simulator (sim phone --help)
  intercom-gateway bind add|list|remove|import|export …   phone ↔ room bindings
  intercom-gateway door list|forget|pin …   known doors: list, forget a replaced one, pin IPs
  intercom-gateway calls [--limit N]        recent call records
  intercom-gateway backup [--to DIR] | backup list   copy the store (backup --help)
  intercom-gateway restore DIR              replace the store with a backup (gateway stopped)
  intercom-gateway migrate | schema         migrate the store now; its schema version
  intercom-gateway --version | --help
`;

/** Runs the CLI; resolves to the exit code. */
export async function run(args: string[]): Promise<number> {
  const [first, ...rest] = args;
  if (first === "--version" || first === "-V" || first === "version") {
    println(VERSION);
    return 0;
  }
  if (first === "--help" || first === "-h" || first === "help") {
    println(USAGE);
    return 0;
  }
  try {
    switch (first) {
      case undefined:
        return await (await import("./src/serve.ts")).serveCommand([]);
      case "serve":
        return await (await import("./src/serve.ts")).serveCommand(rest);
      case "sim": {
        const [what, ...simArgs] = rest;
        if (what === "door") {
          return await (await import("./src/sim/door_cli.ts")).doorSimCommand(simArgs);
        }
        if (what === "phone") {
          return await (await import("./src/sim/phone_cli.ts")).phoneSimCommand(simArgs);
        }
        eprintln(`Cannot run sim ${what ?? ""}: expected "sim door" or "sim phone"`);
        return 2;
      }
      case "bind":
      case "door":
      case "calls":
      case "backup":
      case "restore":
      case "migrate":
      case "schema":
        return await (await import("./src/store/cli.ts")).storeCommand(first, rest);
      default:
        if (first.startsWith("--")) {
          return await (await import("./src/serve.ts")).serveCommand(args);
        }
        eprintln(`Cannot run "${first}": unknown command (try --help)`);
        return 2;
    }
  } catch (e) {
    // One line, whatever the error: the journal and `systemctl status` show all of it.
    eprintln((e instanceof Error ? e.message : String(e)).split("\n").join(" "));
    return e instanceof RangeError ? 2 : 1;
  }
}

if (import.meta.main) {
  Deno.exit(await run(Deno.args));
}
