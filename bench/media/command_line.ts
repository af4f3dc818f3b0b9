/**
 * The media benches' command lines: reading their own options (bench.ts, ws_bench.ts, steps.ts),
 * and the command that starts the product's relay (relay_product.ts) under the relay interface
 * of README.md.
 *
 * @module
 */

const here = new URL(".", import.meta.url).pathname;

/** A bench's options: `--name value` pairs and bare `--flag`s, in any order. */
export interface BenchArgs {
  /** The word after `name`, or `fallback` when `name` is missing or the last word. */
  opt(name: string, fallback: string): string;
  /** Whether `name` is among the words. */
  flag(name: string): boolean;
}

/** Reads `args` (usually `Deno.args`) as {@linkcode BenchArgs}. */
export function benchArgs(args: readonly string[]): BenchArgs {
  return {
    opt: (name, fallback) => {
      const i = args.indexOf(name);
      return i >= 0 && i + 1 < args.length ? args[i + 1]! : fallback;
    },
    flag: (name) => args.includes(name),
  };
}

/**
 * `deno run` of the product's relay with the permissions it needs, before the relay interface's
 * arguments. `extraFlags` go to Deno (e.g. `--v8-flags=…`); `script` is another tree's
 * relay_product.ts (a "before" run), this tree's by default.
 */
export function productRelay(
  extraFlags: readonly string[] = [],
  script = `${here}relay_product.ts`,
): string[] {
  return [
    Deno.execPath(),
    "run",
    "--quiet",
    "--unstable-net",
    "--allow-net",
    "--allow-env",
    ...extraFlags,
    script,
  ];
}
