/**
 * The gateway as a separate process (for signals, crashes and restarts), run with the product's
 * permissions by the same Deno that runs the tests (`INTERCOM_DENO` under emulation).
 *
 * @module
 */

import { CACHED_ONLY_FLAGS, denoCommand, PRODUCT_PERMS } from "../../scripts/deno_flags.ts";

/** A gateway process. */
export interface GatewayProcess {
  readonly child: Deno.ChildProcess;
  readonly httpBase: string;
  /** Everything it wrote to stderr so far. */
  log(): string;
}

export { denoCommand, PRODUCT_PERMS as PERMS } from "../../scripts/deno_flags.ts";

/** How the tests run the product: from the cache, with its own permissions. */
export const RUN_FLAGS: readonly string[] = [...CACHED_ONLY_FLAGS, ...PRODUCT_PERMS];

/** Starts `main.ts serve` with `args` and waits until `/healthz` answers. */
export async function spawnGateway(
  args: string[],
  httpPort: number,
  timeoutMs = 30_000,
): Promise<GatewayProcess> {
  const [cmd, ...pre] = denoCommand();
  const main = new URL("../../main.ts", import.meta.url).pathname;
  const child = new Deno.Command(cmd!, {
    args: [
      ...pre,
      "run",
      ...RUN_FLAGS,
      main,
      "serve",
      "--http-host",
      "127.0.0.1",
      "--http-port",
      String(httpPort),
      "--log-format",
      "text",
      ...args,
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let text = "";
  const decoder = new TextDecoder();
  (async () => {
    for await (const chunk of child.stderr) text += decoder.decode(chunk, { stream: true });
  })();
  const httpBase = `http://127.0.0.1:${httpPort}`;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${httpBase}/healthz`);
      await res.body?.cancel();
      if (res.ok) return { child, httpBase, log: () => text };
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill("SIGKILL");
  await child.status;
  throw new Error(`Cannot start the gateway process: no /healthz within ${timeoutMs} ms\n${text}`);
}
