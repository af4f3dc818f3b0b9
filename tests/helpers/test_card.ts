/**
 * The door simulator's test card as a picture shows it: its eight bars sampled from a canvas in
 * the page (the web phone's live video, the console's visitor snapshot) or from decoded pixels,
 * compared with {@linkcode TEST_CARD_BARS} within what JPEG, H.264 and 4:2:0 chroma shift.
 *
 * @module
 */

import type { Page } from "puppeteer-core";
import { assert } from "./assert.ts";
import { TEST_CARD_BARS } from "../../src/sim/media_source.ts";

/** Colours of the eight bars on the canvas `selector` (at 35 % of its height). */
export async function canvasBars(page: Page, selector: string): Promise<number[][]> {
  // A string, not a function: the page's DOM types are not the test's.
  return await page.evaluate(`(() => {
    const c = document.querySelector(${JSON.stringify(selector)});
    const g = c.getContext("2d");
    const out = [];
    for (let i = 0; i < 8; i++) {
      const d = g.getImageData(Math.round(((i + 0.5) * c.width) / 8), Math.round(c.height * 0.35), 1, 1).data;
      out.push([d[0], d[1], d[2]]);
    }
    return out;
  })()`) as number[][];
}

/** Asserts that `bars` are the test card's, each channel within `tolerance`. */
export function assertTestCard(
  bars: readonly (readonly number[])[],
  what: string,
  tolerance = 45,
): void {
  assert(bars.length === TEST_CARD_BARS.length, `${what}: ${bars.length} bars`);
  for (let i = 0; i < TEST_CARD_BARS.length; i++) {
    for (let c = 0; c < 3; c++) {
      assert(
        Math.abs(bars[i]![c]! - TEST_CARD_BARS[i]![c]!) <= tolerance,
        `${what}: bar ${i} is ${bars[i]}, the card's is ${TEST_CARD_BARS[i]}`,
      );
    }
  }
}
