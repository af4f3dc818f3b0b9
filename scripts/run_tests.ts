/**
 * Runs the whole test suite inside a private network namespace with multicast on loopback, so
 * that no test datagram (and no IGMP report) can leave the machine, then prints the closing line
 * `N passed, M failed` for CI.
 *
 * Usage: `deno task test [-- deno-test-args…]`
 *
 * Environment:
 * - `INTERCOM_DENO`: the Deno command to test with, e.g.
 *   `qemu-aarch64 -L /usr/aarch64-linux-gnu .cache/deno-arm64/deno` for the aarch64 run.
 *   Tests that start the gateway or a simulator as a process use the same command.
 * - `INTERCOM_IN_NETNS=1`: set inside the namespace (by this script).
 *
 * Flag `--harness` (first): run the tests with `scripts/test_harness.ts` under `deno run` instead
 * of `deno test` (the aarch64 run under qemu-user; that file says why). `--filter` and paths go
 * to the harness, other flags (`--no-check`, `--v8-flags=…`) to Deno.
 *
 * @module
 */

import { CACHED_ONLY_FLAGS, denoCommand, TEST_PERMS } from "./deno_flags.ts";
import { NETNS_ENV, netnsCommand } from "./netns.ts";

const denoCmd = denoCommand();
const harness = Deno.args[0] === "--harness";
const extra = harness ? Deno.args.slice(1) : Deno.args;

/** `deno run … test_harness.ts`: Deno's flags before the script, the harness's after it. */
function harnessArgs(args: string[]): { deno: string[]; harness: string[] } {
  const deno: string[] = [];
  const own: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--filter") own.push(a, args[++i] ?? "");
    else if (a.startsWith("--filter=") || !a.startsWith("-")) own.push(a);
    else deno.push(a);
  }
  return { deno, harness: own };
}

const split = harnessArgs(extra);
const testArgs = [
  harness ? "run" : "test",
  ...CACHED_ONLY_FLAGS,
  ...TEST_PERMS,
  ...(harness
    ? [
      ...split.deno,
      new URL("./test_harness.ts", import.meta.url).pathname,
      ...split.harness,
    ]
    : extra),
];

// The native media engine's libraries (dist/native/), for each architecture whose C compiler is
// here: its tests load the one of the Deno under test and fail, saying so, when it is missing.
const build = await new Deno.Command("bash", {
  args: [new URL("./build_native.sh", import.meta.url).pathname],
  stdout: "inherit",
  stderr: "inherit",
}).output();
// deno-lint-ignore no-console
if (!build.success) console.error("Cannot build the native media engine: its tests will fail");

const cmd = netnsCommand([...denoCmd, ...testArgs]);

const child = new Deno.Command(cmd[0]!, {
  args: cmd.slice(1),
  env: { [NETNS_ENV]: "1", INTERCOM_DENO: denoCmd.join(" "), NO_COLOR: "1" },
  stdout: "piped",
  stderr: "inherit",
}).spawn();

let tail = "";
const decoder = new TextDecoder();
for await (const chunk of child.stdout) {
  await Deno.stdout.write(chunk);
  tail = (tail + decoder.decode(chunk, { stream: true })).slice(-4096);
}
const status = await child.status;

// deno test closes with "ok | 39 passed (2 steps) | 0 failed (…)" or "FAILED | …".
const m = /(\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed/.exec(tail);
const passed = m ? Number(m[1]) : 0;
const failed = m ? Number(m[2]) : status.success ? 0 : 1;
// deno-lint-ignore no-console
console.log(`${passed} passed, ${failed} failed`);
Deno.exit(status.success && m ? 0 : 1);
