/**
 * Headless Chromium for the console's browser tests (`npm:puppeteer-core`, pinned in deno.json):
 * launched inside the test's network namespace, always killed afterwards (its process group, by
 * PID, even when the test failed), with a folder for screenshots that CI keeps.
 *
 * @module
 */

import type { Browser, Page } from "puppeteer-core";
import { BROWSER_PIDS, CHROMIUM, hasChromium, SCREENSHOTS, withChromium } from "./chromium.ts";

export { BROWSER_PIDS, CHROMIUM, SCREENSHOTS };
import * as jsqrModule from "jsqr";

type Decode = (data: Uint8ClampedArray, w: number, h: number) => { data: string } | null;
/** jsqr is CommonJS with an `exports.default`: which one is the function depends on the interop. */
const jsqrDefault = (jsqrModule as unknown as { default: unknown }).default;
const jsQR =
  (typeof jsqrDefault === "function"
    ? jsqrDefault
    : (jsqrDefault as { default: unknown }).default) as Decode;

/**
 * Why the browser tests cannot run here, or `undefined` when they can: no Chromium, or an
 * emulated run (the aarch64 suite under qemu-user: the browser is an x86_64 binary).
 */
export const browserSkip: string | undefined = !hasChromium
  ? `no Chromium at ${CHROMIUM}`
  : Deno.build.arch !== "x86_64"
  ? `Chromium is not run on ${Deno.build.arch} (emulated)`
  : undefined;

/** Options of {@linkcode withBrowser}. */
export interface BrowserOptions {
  /** `navigator.language` and Accept-Language. @default {"en-US"} */
  readonly lang?: string;
  /** @default 1280×900 */
  readonly viewport?: { width: number; height: number; isMobile?: boolean };
  /** More Chromium flags (e.g. a host name mapped to loopback, for HTTPS to a "LAN" name). */
  readonly args?: readonly string[];
}

/** Runs `fn` with a fresh browser and page; the browser is closed, then killed, whatever happens. */
export async function withBrowser(
  options: BrowserOptions,
  fn: (page: Page, browser: Browser) => Promise<void>,
): Promise<void> {
  const lang = options.lang ?? "en-US";
  await withChromium([
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-extensions",
    "--hide-scrollbars",
    `--lang=${lang}`,
    ...(options.args ?? []),
  ], async (browser) => {
    const page = await browser.newPage();
    // What went wrong in the page is part of a failure's message.
    const problems: string[] = [];
    page.on("pageerror", (e) => problems.push(`page error: ${String(e)}`));
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(`console: ${m.text()}`);
    });
    await page.setExtraHTTPHeaders({ "accept-language": `${lang},${lang.split("-")[0]};q=0.9` });
    await page.setViewport(options.viewport ?? { width: 1280, height: 900 });
    try {
      await fn(page, browser);
    } catch (e) {
      await screenshot(page, `FAILED-${Date.now()}`).catch(() => {});
      if (problems.length && e instanceof Error) e.message += `\n${problems.join("\n")}`;
      throw e;
    }
  }, { ...Deno.env.toObject(), LANGUAGE: lang.replace("-", "_") });
}

/**
 * Saves a full-page screenshot as `<name>.png` in {@linkcode SCREENSHOTS} once the page's pictures
 * are in (at most 2 s); returns its path.
 */
export async function screenshot(page: Page, name: string): Promise<string> {
  await Deno.mkdir(SCREENSHOTS, { recursive: true });
  const path = `${SCREENSHOTS}${name}.png`;
  // Pictures still loading (lazy snapshots, canvases being decoded) change the page's height.
  await page.waitForFunction(
    `[...document.images].every((i) => i.complete) &&
      [...document.querySelectorAll("canvas.snap")].every((c) => c.hasAttribute("data-drawn"))`,
    { timeout: 2000, polling: 50 },
  ).catch(() => {});
  await page.screenshot({ path: path as `${string}.png`, fullPage: true });
  return path;
}

/**
 * Decodes the QR code in a PNG (e.g. a screenshot of the QR element): the browser decodes the
 * PNG into pixels, `jsQR` reads the code. Resolves to its text, or `undefined`.
 */
export async function decodeQrPng(page: Page, png: Uint8Array): Promise<string | undefined> {
  let bin = "";
  for (let i = 0; i < png.length; i += 8192) {
    bin += String.fromCharCode(...png.subarray(i, i + 8192));
  }
  // A string, not a function: the page's DOM types are not the test's.
  const img = await page.evaluate(`(async () => {
    const bytes = Uint8Array.from(atob(${JSON.stringify(btoa(bin))}), (c) => c.charCodeAt(0));
    const bitmap = await createImageBitmap(new Blob([bytes], { type: "image/png" }));
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const ctx = canvas.getContext("2d");
    ctx.drawImage(bitmap, 0, 0);
    const pixels = ctx.getImageData(0, 0, bitmap.width, bitmap.height).data;
    let s = "";
    for (let i = 0; i < pixels.length; i += 8192) s += String.fromCharCode(...pixels.subarray(i, i + 8192));
    return { width: bitmap.width, height: bitmap.height, rgba: btoa(s) };
  })()`) as { width: number; height: number; rgba: string };
  const rgba = Uint8ClampedArray.from(atob(img.rgba), (c) => c.charCodeAt(0));
  return jsQR(rgba, img.width, img.height)?.data;
}
