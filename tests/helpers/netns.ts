/**
 * Whether the tests run inside the private network namespace that `deno task test`
 * (scripts/run_tests.ts) sets up with `unshare -rn`: loopback only, multicast routed on `lo`.
 *
 * Tests that send multicast, or bind the door port 8302, must run only there, never on the real
 * interface of a developer's machine:
 *
 * ```ts
 * Deno.test({ name: "…", ignore: !inNetns, fn: async () => { … } });
 * ```
 *
 * @module
 */

export { inNetns } from "../../scripts/netns.ts";

/** Why namespace-only tests are skipped elsewhere (for log lines). */
export const NETNS_SKIP_REASON =
  "needs the private network namespace of `deno task test` (INTERCOM_IN_NETNS=1)";
