/**
 * Runs a command to its end within a time limit: a test that expects a process to exit (a second
 * gateway refused, a simulator done) fails instead of hanging when it keeps running.
 *
 * @module
 */

/** What a bounded run gave: the exit code, or `"timeout"` when it was killed at the limit. */
export interface BoundedResult {
  readonly code: number | "timeout";
  readonly out: string;
  readonly err: string;
}

/** Runs `cmd args…` (stdin closed, output piped); SIGKILL after `timeoutMs`. */
export async function runBounded(
  cmd: string,
  args: readonly string[],
  timeoutMs: number,
  options: { env?: Record<string, string> } = {},
): Promise<BoundedResult> {
  const child = new Deno.Command(cmd, {
    args: [...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...options.env },
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill("SIGKILL");
  }, timeoutMs);
  try {
    const r = await child.output();
    const d = new TextDecoder();
    return {
      code: timedOut ? "timeout" : r.code,
      out: d.decode(r.stdout),
      err: d.decode(r.stderr),
    };
  } finally {
    clearTimeout(timer);
  }
}
