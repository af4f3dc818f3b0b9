/**
 * The gateway's commands as an installer types them: a Deno subcommand (`run … main.ts serve`, a
 * deno.json task's command line) run by the Deno that runs the tests, from the repository root,
 * with a chosen environment; either to completion or until `/healthz` answers.
 *
 * @module
 */

import { denoCommand } from "./process.ts";

/** The repository root (where deno.json and its tasks are). */
export const REPO_ROOT: string = new URL("../../", import.meta.url).pathname;

/** How to run a command. */
export interface CommandOptions {
  /** Variables added to the test's environment. */
  env?: Record<string, string>;
  /** Removes every inherited `INTERCOM_*` variable first (but `INTERCOM_DENO` is still used). */
  cleanIntercomEnv?: boolean;
}

function environment(options: CommandOptions): Record<string, string> {
  const base = Deno.env.toObject();
  if (options.cleanIntercomEnv) {
    for (const k of Object.keys(base)) if (k.startsWith("INTERCOM_")) delete base[k];
  }
  return { ...base, NO_COLOR: "1", ...options.env };
}

function command(args: string[], options: CommandOptions, piped: boolean): Deno.Command {
  const [cmd, ...pre] = denoCommand();
  return new Deno.Command(cmd!, {
    args: [...pre, ...args],
    cwd: REPO_ROOT,
    env: environment(options),
    clearEnv: true,
    stdin: "null",
    stdout: piped ? "piped" : "null",
    stderr: "piped",
  });
}

/** Runs `deno ARGS…` to its end. */
export async function runDeno(
  args: string[],
  options: CommandOptions = {},
): Promise<{ code: number; out: string; err: string }> {
  const r = await command(args, options, true).output();
  const d = new TextDecoder();
  return { code: r.code, out: d.decode(r.stdout), err: d.decode(r.stderr) };
}

/** A running gateway command. */
export interface ServeProcess {
  readonly child: Deno.ChildProcess;
  /** Everything written to stderr so far. */
  log(): string;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number>;
}

/**
 * Starts `deno ARGS…` and waits until `healthUrl` answers 200 (`client` for https).
 *
 * @throws {Error} with the process's stderr when it exits or does not answer in time.
 */
export async function startDeno(
  args: string[],
  healthUrl: string,
  options: CommandOptions & { client?: Deno.HttpClient; timeoutMs?: number } = {},
): Promise<ServeProcess> {
  const child = command(args, options, false).spawn();
  let text = "";
  const decoder = new TextDecoder();
  const reading = (async () => {
    for await (const chunk of child.stderr) text += decoder.decode(chunk, { stream: true });
  })();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const stop = async () => {
    if (!exited) child.kill("SIGTERM");
    const s = await status;
    await reading;
    return s.code;
  };
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  while (Date.now() < deadline && !exited) {
    try {
      const res = await fetch(healthUrl, options.client ? { client: options.client } : {});
      await res.body?.cancel();
      if (res.ok) return { child, log: () => text, stop };
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  if (!exited) child.kill("SIGKILL");
  await status;
  await reading;
  throw new Error(`Cannot start ${args.join(" ")}: no ${healthUrl}\n${text}`);
}
