/**
 * `serve`: parse the configuration, start the gateway, stop cleanly on SIGINT/SIGTERM.
 *
 * @module
 */

import { configFrom, optionsHelp, serveArgOptions } from "./config.ts";
import { parseArgs } from "node:util";
import { eprintln, println } from "./print.ts";
import { startApp } from "./app.ts";
import denoJson from "../deno.json" with { type: "json" };

/** Runs the gateway until a signal; resolves to the exit code. */
export async function serveCommand(args: string[]): Promise<number> {
  let values;
  try {
    values = parseArgs({
      args,
      options: { ...serveArgOptions(), help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (e) {
    eprintln(`Cannot parse flags: ${e instanceof Error ? e.message : String(e)}`);
    return 2;
  }
  if (values.help) {
    println(`intercom-gateway serve [flags]\n\n${optionsHelp()}`);
    return 0;
  }
  const config = configFrom(values, Deno.env.toObject());
  const app = await startApp(config, { version: denoJson.version });
  const stop = () => void app.shutdown();
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  await app.finished;
  Deno.removeSignalListener("SIGINT", stop);
  Deno.removeSignalListener("SIGTERM", stop);
  return 0;
}
