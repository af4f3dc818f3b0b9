/**
 * Headless Chromium for the browser tests (`npm:puppeteer-core`, pinned in deno.json), written
 * once for the console's and the web phone's helpers: the binary, the screenshots folder, and a
 * launch whose browser is closed, then killed by its process group, whatever happens (its PID
 * is also recorded for `.ci/run`, which kills any left alive after the suite).
 *
 * @module
 */

import puppeteer, { type Browser } from "puppeteer-core";

/** The Chromium binary (Debian's; the /usr/bin wrapper prints a shell error here). */
export const CHROMIUM: string = Deno.env.get("INTERCOM_CHROMIUM") ?? "/usr/lib/chromium/chromium";

/** True when the Chromium binary is there (the browser tests are skipped otherwise). */
export const hasChromium: boolean = (() => {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
})();

/** Where screenshots go (looked at by people, kept by CI; not compared). */
export const SCREENSHOTS: string = new URL("../../.cache/screenshots/", import.meta.url).pathname;

/** Every launched browser's PID, one a line: `.ci/run` kills any still alive after the suite. */
export const BROWSER_PIDS: string = new URL("../../.cache/browser-pids", import.meta.url).pathname;

/** Runs `fn` with a headless Chromium started with `args`; closed or killed afterwards. */
export async function withChromium<T>(
  args: readonly string[],
  fn: (browser: Browser) => Promise<T>,
  env?: Record<string, string>,
): Promise<T> {
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
    args: ["--no-sandbox", "--no-first-run", ...args],
    ...(env ? { env } : {}),
  });
  const pid = browser.process()?.pid;
  try {
    if (pid !== undefined) {
      await Deno.mkdir(new URL("../../.cache/", import.meta.url), { recursive: true });
      await Deno.writeTextFile(BROWSER_PIDS, `${pid}\n`, { append: true });
    }
    return await fn(browser);
  } finally {
    await Promise.race([browser.close().catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
    if (pid !== undefined) {
      for (const target of [-pid, pid]) {
        try {
          Deno.kill(target, "SIGKILL");
        } catch {
          // already gone
        }
      }
    }
  }
}
