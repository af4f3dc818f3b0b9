/**
 * `scripts/test_harness.ts` (the aarch64 run's runner) reports what `deno test` would: passes,
 * failures with their error, ignored tests, uncaught rejections, `--filter`, and the closing line
 * that `scripts/run_tests.ts` and CI count.
 */

import { assert, assertEquals } from "./helpers/assert.ts";
import { denoCommand } from "./helpers/process.ts";

const HARNESS = new URL("../scripts/test_harness.ts", import.meta.url).pathname;
const SAMPLE = "./tests/fixtures/harness/sample.ts";

async function harness(...args: string[]): Promise<{ code: number; out: string }> {
  const [cmd, ...pre] = denoCommand();
  const r = await new Deno.Command(cmd!, {
    args: [
      ...pre,
      "run",
      "--no-check",
      "--allow-read",
      "--allow-env=INTERCOM_TEST_TIMEOUT_S",
      HARNESS,
      ...args,
    ],
    env: { INTERCOM_TEST_TIMEOUT_S: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: r.code, out: new TextDecoder().decode(r.stdout) };
}

Deno.test("test harness: passes, failures, ignored and uncaught rejections, deno test's tail", async () => {
  const { code, out } = await harness(SAMPLE);
  assertEquals(code, 1);
  assert(out.includes(`running 5 tests from ${SAMPLE}`), out);
  assert(/^passes \.\.\. ok \(/m.test(out), out);
  assert(/^fails \.\.\. FAILED \(/m.test(out), out);
  assert(/^ignored \.\.\. ignored/m.test(out), out);
  assert(/^rejection nobody awaited \.\.\. FAILED/m.test(out), out);
  assert(/^with options \.\.\. ok/m.test(out), out);
  assert(out.includes("error: Error: boom") && out.includes("uncaught: Error: late"), out);
  assert(/\nFAILED \| 2 passed \| 2 failed \| 1 ignored \(\d+m?s\)\n$/.test(out), out);
});

Deno.test("test harness: --filter runs the matching tests only", async () => {
  const { code, out } = await harness("--filter", "pass", SAMPLE);
  assertEquals(code, 0);
  assert(/\nok \| 1 passed \| 0 failed \| 4 filtered out \(\d+m?s\)\n$/.test(out), out);
});

Deno.test("test harness: several --filter run the tests matching any of them", async () => {
  const { code, out } = await harness("--filter", "passes", "--filter", "with options", SAMPLE);
  assertEquals(code, 0);
  assert(/^passes \.\.\. ok/m.test(out) && /^with options \.\.\. /m.test(out), out);
  assert(/\nok \| 2 passed \| 0 failed \| 3 filtered out \(\d+m?s\)\n$/.test(out), out);
});

Deno.test("test harness: a test that never ends fails after its bound; the next one runs", async () => {
  const { code, out } = await harness("./tests/fixtures/harness/hang.ts");
  assertEquals(code, 1);
  assert(/^hangs \.\.\. FAILED \(/m.test(out), out);
  assert(out.includes("Cannot finish the test: still running after 1000 ms"), out);
  assert(/^after the hang \.\.\. ok/m.test(out), out);
  assert(/\nFAILED \| 1 passed \| 1 failed \(\d+m?s\)\n$/.test(out), out);
});
