/**
 * The Deno command and the permission sets the project runs with: the product's (every task and
 * test that starts the gateway), and the test suite's. One definition for scripts, benches and
 * tests.
 *
 * @module
 */

/** The unstable APIs the gateway uses (UDP, KV). */
export const UNSTABLE_FLAGS: readonly string[] = ["--unstable-net", "--unstable-kv"];

/** The product's flags: the permissions it runs with everywhere (README "Security"). */
export const PRODUCT_PERMS: readonly string[] = [
  ...UNSTABLE_FLAGS,
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-sys=networkInterfaces,statfs",
];

/**
 * For every Deno the suite starts inside its network namespace, which has no registry: use what is
 * cached. `deno task` installed the locked packages before, but Deno 2.9 still asks the registry
 * for npm metadata (packuments) a lock-file install did not cache, prints "Download …" on stderr
 * and then goes on without it.
 */
export const CACHED_ONLY_FLAGS: readonly string[] = ["--cached-only"];

/** The test suite's flags: the product's, plus starting processes and all system information. */
export const TEST_PERMS: readonly string[] = [
  ...UNSTABLE_FLAGS,
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-run",
  "--allow-sys",
  "--allow-ffi",
];

/**
 * The Deno command to run the product and the tests with: `INTERCOM_DENO` (a wrapper, e.g.
 * `qemu-aarch64 -L … deno` for the emulated run), else this Deno.
 */
export function denoCommand(): string[] {
  return (Deno.env.get("INTERCOM_DENO") ?? Deno.execPath()).split(" ").filter(Boolean);
}
