/**
 * Flag parsing for the benches' command lines: `deno task NAME -- --flag …` (the `--` comes
 * through), exit 2 on a bad flag, the usage line and exit 0 on `--help`.
 *
 * @module
 */

import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { eprintln, println } from "../../src/print.ts";

/** The parsed values of `options` (plus `help`). */
export type BenchFlags<T extends ParseArgsOptionsConfig> = ReturnType<
  typeof parseArgs<{ options: T & { help: { type: "boolean"; short: "h" } }; strict: true }>
>["values"];

/** Parses `Deno.args` with `options` and `--help`/`-h`; exits as the module doc says. */
export function parseBenchFlags<T extends ParseArgsOptionsConfig>(
  options: T,
  usage: string,
): BenchFlags<T> {
  let values: BenchFlags<T>;
  try {
    values = parseArgs({
      args: Deno.args[0] === "--" ? Deno.args.slice(1) : Deno.args,
      options: { ...options, help: { type: "boolean", short: "h" } } as T & {
        help: { type: "boolean"; short: "h" };
      },
      strict: true,
    }).values;
  } catch (e) {
    eprintln(`Cannot parse flags: ${e instanceof Error ? e.message : e}`);
    Deno.exit(2);
  }
  if ((values as { help?: boolean }).help) {
    println(usage);
    Deno.exit(0);
  }
  return values;
}
