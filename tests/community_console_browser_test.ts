/**
 * The console of one gateway of a community (issue 15): its calls page shows the whole
 * community's calls and unlocks, each with its gateway, and says when it shows only its own
 * because the hub cannot be reached. A 3-node hub and two gateways in their own namespaces
 * (tests/helpers/cluster.ts); Chromium in the test's namespace opens gateway B's console through
 * its bridged HTTP port. Screenshots: `community-calls-{en,zh-phone,cut}.png`.
 */

import type { Page } from "puppeteer-core";
import { assert, assertEquals } from "./helpers/assert.ts";
import { doorCall, loginAs, state, withCommunity, within } from "./helpers/cluster.ts";
import { inNetns } from "./helpers/netns.ts";
import { api, PASSWORD } from "./helpers/admin_console.ts";
import { browserSkip, screenshot, withBrowser } from "./helpers/admin_browser.ts";
import { TIME_SCALE } from "./helpers/scale.ts";

const opts = {
  ignore: !inNetns || TIME_SCALE > 1 || browserSkip !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
};
const T = (ms: number) => ms * TIME_SCALE;

/** Logs in to the console at `base` and opens its calls page. */
async function openCalls(page: Page, base: string): Promise<void> {
  await page.goto(`${base}/admin`, { waitUntil: "domcontentloaded" });
  await page.waitForSelector("#login");
  await page.type("#name", "manager");
  await page.type("#password", PASSWORD);
  await Promise.all([page.waitForNavigation(), page.click("#submit")]);
  await page.waitForSelector('main[data-loaded="overview"]', { timeout: T(8000) });
  await page.evaluate(`location.hash = "#/calls"`);
  await page.waitForSelector('main[data-loaded="calls"]', { timeout: T(8000) });
  await page.waitForSelector("#scope", { timeout: T(8000) });
}

async function textOf(page: Page, selector: string): Promise<string> {
  return await page.$eval(selector, (el) => (el as unknown as { textContent: string }).textContent);
}

/** The gateways of the history's and of the unlock audit's rows, as shown. */
async function shownGateways(page: Page): Promise<{ calls: string[]; unlocks: string[] }> {
  return await page.evaluate(`({
    calls: [...document.querySelectorAll("#history td.gateway")].map((td) => td.textContent),
    unlocks: [...document.querySelectorAll("#unlock-table td.gateway")].map((td) => td.textContent),
  })`) as { calls: string[]; unlocks: string[] };
}

Deno.test(
  "community console: B's calls page shows every gateway's calls and unlocks, and says when it shows only its own",
  opts,
  () =>
    withCommunity(async ({ a, b, boundPhoneOnB }) => {
      // One phone, bound once, on B: a door on A and a door on B each ring it.
      await boundPhoneOnB("uid-c", {
        answer: "talk",
        talkAfterS: 0.2,
        talkRetries: 2,
        unlockAfterS: 0.2,
        hangupAfterS: 0.6,
        enableVideo: "none",
      });
      await within("A knows the room is online on B", T(5000), async () => {
        return (await state(a)).remoteRooms.includes("00010108090");
      });
      await doorCall(a);
      await doorCall(b);

      const cookie = await loginAs(b);
      const session = await api(b.httpBase, cookie, "GET", "/api/v1/session");
      assertEquals(session.body.community, "gwB");
      await within("both calls at the hub", T(10_000), async () => {
        const r = await api(b.httpBase, cookie, "GET", "/api/v1/community/calls");
        return (r.body.gateways as string[]).join() === "gwA,gwB";
      });
      const view = await api(b.httpBase, cookie, "GET", "/api/v1/community/calls");
      const records = view.body.records as Record<string, unknown>[];
      assertEquals([view.body.scope, view.body.gateway], ["community", "gwB"]);
      assertEquals(records.map((r) => [r.gateway, r.outcome]).sort(), [
        ["gwA", "answered"],
        ["gwB", "answered"],
      ]);
      // Snapshots stay where they were taken: only B's own call names its kind (or null).
      assert(records.find((r) => r.gateway === "gwB")!.snapshot !== undefined);
      assertEquals(records.find((r) => r.gateway === "gwA")!.snapshot, undefined);

      await withBrowser({}, async (page) => {
        await openCalls(page, b.httpBase);
        // This gateway's view by default: no gateway column.
        assertEquals((await shownGateways(page)).calls, []);
        await page.select("#scope", "community");
        await page.waitForSelector("#history td.gateway", { timeout: T(8000) });
        await page.waitForSelector("#unlock-table td.gateway", { timeout: T(8000) });
        // The latest of the whole community: this gateway's filters and paging do not apply.
        assertEquals(
          await page.evaluate(
            `getComputedStyle(document.querySelector("#history-filter")).display`,
          ),
          "none",
        );
        const shown = await shownGateways(page);
        assertEquals(shown.calls.sort(), ["gwA", "gwB"]);
        assertEquals(shown.unlocks.filter((g) => g === "gwA").length, 1, shown.unlocks.join());
        assertEquals(shown.unlocks.filter((g) => g === "gwB").length, 1, shown.unlocks.join());
        const note = await textOf(page, "#scope-note");
        assert(note.includes("gwA, gwB"), String(note));
        const label = await page.$eval(
          "#scope",
          (el) =>
            (el as unknown as { closest(s: string): { textContent: string } | null }).closest(
              "label",
            )?.textContent ?? "",
        );
        assert(label.includes("Show"), `the scope switch has a name: ${label}`);
        await screenshot(page, "community-calls-en");

        // The office cut off: B says so and shows its own records.
        b.link.cut();
        await within("B sees the hub gone", T(5000), async () => !(await state(b)).hubUp);
        await page.select("#scope", "local");
        await page.select("#scope", "community");
        await page.waitForFunction(
          `document.querySelector("#scope-note")?.className === "warn"`,
          { timeout: T(8000), polling: 100 },
        );
        const cut = await textOf(page, "#scope-note");
        assert(cut.includes("this gateway's records only"), String(cut));
        await page.waitForFunction(
          `[...document.querySelectorAll("#history td.gateway")].every((td) => td.textContent === "gwB")`,
          { timeout: T(8000), polling: 100 },
        );
        assertEquals((await shownGateways(page)).calls, ["gwB"]);
        await screenshot(page, "community-calls-cut");
        b.link.heal();
      });

      await within("B sees the hub again", T(10_000), async () => (await state(b)).hubUp);
      await withBrowser({
        lang: "zh-CN",
        viewport: { width: 390, height: 844, isMobile: true },
      }, async (page) => {
        await openCalls(page, b.httpBase);
        await page.select("#scope", "community");
        await page.waitForSelector("#history td.gateway", { timeout: T(8000) });
        const note = await textOf(page, "#scope-note");
        assert(note.includes("整个小区"), String(note));
        await screenshot(page, "community-calls-zh-phone");
      });
    }),
);
