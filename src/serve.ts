/**
 * `serve`: parse the configuration, start the gateway, stop cleanly on SIGINT/SIGTERM.
 *
 * What can go wrong before the gateway runs is said in one line: a bad flag or variable (exit 2,
 * from `config.ts`), an interface name that does not exist (exit 2), or a port, file or data
 * store that cannot be opened (exit 1, translated by `net/listen_error.ts`).
 *
 * @module
 */

import { dirname } from "node:path";
import { type Config, ConfigError, optionsHelp, parseServeArgs, resolveConfig } from "./config.ts";
import { eprintln, println } from "./print.ts";
import { startApp } from "./app.ts";
import { createLogger, type Logger } from "./log.ts";
import { resolveInterface } from "./net/interfaces.ts";
import { describeStartError, opening, StartError, type StoreFacts } from "./net/listen_error.ts";
import { isKvUrl, kvLocation } from "./store/kv.ts";
import denoJson from "../deno.json" with { type: "json" };

/**
 * The configuration with `--multicast-interface` as an IPv4 address (a name is looked up in
 * `Deno.networkInterfaces()`).
 *
 * @throws {ConfigError} naming the flag when no interface of that name has an IPv4 address.
 */
function withInterfaceAddress(config: Config, logger: Logger): Config {
  const given = config.multicastInterface;
  if (given === undefined) return config;
  const found = resolveInterface(given, Deno.networkInterfaces());
  if (!found.ok) {
    throw new ConfigError(
      `Cannot use --multicast-interface=${JSON.stringify(given)}: no interface of that name ` +
        `has an IPv4 address (interfaces with one: ${found.known.join(", ") || "none"})`,
    );
  }
  if (found.address === given) return config;
  logger.debug("multicast interface", { name: given, address: found.address });
  return Object.freeze({ ...config, multicastInterface: found.address });
}

/**
 * Fails now, rather than at the first write, when the data store or its directory exists but is
 * not writable (Deno KV opens a read-only database and only its writes fail).
 */
async function checkStoreWritable(data: string): Promise<void> {
  if (data === ":memory:" || isKvUrl(data)) return;
  await opening({ kind: "store", location: data }, async () => {
    const file = await kvLocation(data);
    const dir = file === data ? dirname(file) : data;
    try {
      (await Deno.open(file, { write: true })).close();
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    let probe: string;
    try {
      probe = await Deno.makeTempFile({ dir, prefix: ".write-test-" });
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return; // openStore creates it
      throw e;
    }
    await Deno.remove(probe);
  });
}

/** Where the store is and who owns it, for the message (best effort). */
async function storeFacts(data: string): Promise<StoreFacts> {
  const file = await kvLocation(data).catch(() => data);
  const dir = file === data ? dirname(file) : data;
  for (const path of [file, dir]) {
    try {
      const st = await Deno.stat(path);
      return { file, dir, uid: st.uid, mode: st.mode };
    } catch {
      // try the directory, else no facts
    }
  }
  return { file, dir };
}

/** Runs the gateway until a signal; resolves to the exit code. */
export async function serveCommand(args: string[]): Promise<number> {
  const { values, help } = parseServeArgs(args);
  if (help) {
    println(`intercom-gateway serve [flags]\n\n${optionsHelp()}`);
    return 0;
  }
  const resolved = resolveConfig(values, Deno.env.toObject());
  const logger = createLogger({
    level: resolved.config.logLevel,
    format: resolved.config.logFormat,
  });
  for (const warning of resolved.warnings) logger.warn(warning);
  const config = withInterfaceAddress(resolved.config, logger);
  let app;
  try {
    await checkStoreWritable(config.data);
    app = await startApp(config, { version: denoJson.version, logger });
  } catch (e) {
    if (!(e instanceof StartError)) throw e;
    const store = e.step.kind === "store" ? await storeFacts(config.data) : undefined;
    eprintln(describeStartError(e.cause, { step: e.step, ...(store ? { store } : {}) }));
    return 1;
  }
  const stop = () => void app.shutdown();
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  await app.finished;
  Deno.removeSignalListener("SIGINT", stop);
  Deno.removeSignalListener("SIGTERM", stop);
  return 0;
}
