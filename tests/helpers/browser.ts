/**
 * Headless Chromium for the web phone's tests (puppeteer-core, pinned in deno.json): a phone-
 * sized page, fake microphone from a WAV the test writes, autoplay allowed. The browser is
 * closed in `finally`, and killed by its PID (process group) when closing does not end it, so a
 * failed test leaves no Chromium behind.
 *
 * @module
 */

import type { Browser, Page } from "puppeteer-core";
import { CHROMIUM, hasChromium, SCREENSHOTS, withChromium } from "./chromium.ts";
import { inNetns } from "./netns.ts";
import { TIME_SCALE } from "./scale.ts";

export { CHROMIUM, hasChromium, SCREENSHOTS };

/**
 * `Deno.test` options of the web phone's browser tests: only inside the private network
 * namespace of `deno task test`, only where Chromium is installed, and not under emulation (the
 * aarch64 run under qemu-user): the browser is the host's, and what these tests check is the web
 * phone, which the native run covers. Op and resource sanitizers off.
 */
export const WEB_PHONE_TEST_OPTS = {
  ignore: !inNetns || !hasChromium || TIME_SCALE > 1,
  sanitizeOps: false,
  sanitizeResources: false,
} as const;

/** A phone's screen: 390×844 CSS pixels (a common phone), 2× for readable screenshots. */
export const PHONE_VIEWPORT = {
  width: 390,
  height: 844,
  deviceScaleFactor: 2,
  isMobile: true,
  hasTouch: true,
} as const;

/** Options of {@linkcode withBrowser}. */
export interface BrowserOptions {
  /** A WAV file the fake microphone plays (looped). */
  fakeAudio?: string;
  /** Extra Chromium flags. */
  args?: string[];
}

/** Runs `fn` with a headless Chromium, which is closed (or killed) afterwards, whatever happens. */
export async function withBrowser<T>(
  options: BrowserOptions,
  fn: (browser: Browser) => Promise<T>,
): Promise<T> {
  return await withChromium([
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    ...(options.fakeAudio ? [`--use-file-for-fake-audio-capture=${options.fakeAudio}`] : []),
    "--autoplay-policy=no-user-gesture-required",
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    ...(options.args ?? []),
  ], fn);
}

/** A new page with the phone viewport, its console errors collected in `errors`. */
export async function phonePage(
  browser: Browser | { newPage(): Promise<Page> },
): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage();
  await page.setViewport(PHONE_VIEWPORT);
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(String((e as Error).message ?? e)));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  return { page, errors };
}

/** Saves a PNG of the page under `.cache/screenshots/NAME.png`; returns the path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  await Deno.mkdir(SCREENSHOTS, { recursive: true });
  const path = `${SCREENSHOTS}${name}.png`;
  await page.screenshot({ path: path as `${string}.png` });
  return path;
}

/** Polls `fn` in the page until it returns a truthy value; that value, or a timeout error. */
export async function pageWait<T>(
  page: Page,
  fn: () => T,
  what: string,
  timeoutMs = 10_000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      last = await page.evaluate(fn);
      if (last) return last as T;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) {
      throw new Error(`Cannot see ${what} within ${timeoutMs} ms (last: ${String(last)})`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A mono 16-bit WAV at 8000 Hz: a `hz` tone at peak `level`, on for `onMs`, off for `offMs`,
 * repeated to `totalMs` (bursts give the echo canceller and noise suppressor no steady tone to
 * learn, and their edges time the microphone's latency).
 */
export function toneWav(
  options: { hz: number; level: number; onMs: number; offMs: number; totalMs: number },
): Uint8Array {
  const rate = 8000;
  const n = Math.round((options.totalMs / 1000) * rate);
  const data = new Int16Array(n);
  const period = options.onMs + options.offMs;
  for (let i = 0; i < n; i++) {
    const ms = (i / rate) * 1000;
    const on = ms % period < options.onMs;
    data[i] = on
      ? Math.round(options.level * 32767 * Math.sin((2 * Math.PI * options.hz * i) / rate))
      : 0;
  }
  const out = new Uint8Array(44 + n * 2);
  const v = new DataView(out.buffer);
  const str = (at: number, s: string) => [...s].forEach((c, i) => (out[at + i] = c.charCodeAt(0)));
  str(0, "RIFF");
  v.setUint32(4, 36 + n * 2, true);
  str(8, "WAVE");
  str(12, "fmt ");
  v.setUint32(16, 16, true);
  v.setUint16(20, 1, true);
  v.setUint16(22, 1, true);
  v.setUint32(24, rate, true);
  v.setUint32(28, rate * 2, true);
  v.setUint16(32, 2, true);
  v.setUint16(34, 16, true);
  str(36, "data");
  v.setUint32(40, n * 2, true);
  new Uint8Array(out.buffer, 44).set(new Uint8Array(data.buffer));
  return out;
}
