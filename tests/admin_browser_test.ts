/**
 * The console in a real browser (headless Chromium, inside the test's network namespace): log
 * in (a wrong password refused), watch a door call live on the overview while a simulated door
 * rings a simulated phone, add a binding and decode its QR code back to the provisioning link,
 * remove a binding and see the phone cut off, filter the history (with the visitor snapshot),
 * watch the trace show the call's packets, and the Chinese console on a phone-sized screen.
 * Each test saves screenshots into `.cache/screenshots/` (CI keeps them).
 *
 * Skipped where Chromium cannot run (see `browserSkip`: the aarch64 run under qemu-user).
 */

import type { Page } from "puppeteer-core";
import { assert, assertEquals } from "./helpers/assert.ts";
import { startTestGateway, type TestGateway, TIME_SCALE } from "./helpers/gateway.ts";
import { inNetns } from "./helpers/netns.ts";
import { openDoor, openPhone, sleep } from "./helpers/sims.ts";
import { addAdmin, PASSWORD } from "./helpers/admin_console.ts";
import { browserSkip, decodeQrPng, screenshot, withBrowser } from "./helpers/admin_browser.ts";
import { PhoneSim } from "../src/sim/phone_sim.ts";
import { CodedVideoSource } from "../src/sim/media_source.ts";
import { assertTestCard, canvasBars } from "./helpers/test_card.ts";

if (browserSkip && inNetns) {
  // deno-lint-ignore no-console
  console.error(`admin_browser_test: browser tests skipped: ${browserSkip}`);
}

const opts = {
  ignore: !inNetns || browserSkip !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
};
const T = (ms: number) => ms * TIME_SCALE;
const ROOM = "00010108090";
const FIXTURES = new URL("./fixtures/video/", import.meta.url);

async function logIn(
  page: Page,
  gw: TestGateway,
  password = PASSWORD,
  base = gw.httpBase,
): Promise<void> {
  await page.goto(`${base}/admin`, { waitUntil: "domcontentloaded" });
  await page.waitForSelector("#login");
  await page.type("#name", "manager");
  await page.type("#password", password);
  await page.click("#submit");
}

async function textOf(page: Page, selector: string): Promise<string> {
  return await page.$eval(selector, (el) => (el as unknown as { textContent: string }).textContent);
}

/** Waits until `selector`'s text contains `text`. */
async function waitText(page: Page, selector: string, text: string, ms = T(8000)): Promise<void> {
  await page.waitForFunction(
    `(document.querySelector(${JSON.stringify(selector)})?.textContent ?? "").includes(${
      JSON.stringify(text)
    })`,
    { timeout: ms, polling: 100 },
  );
}

async function go(page: Page, view: string): Promise<void> {
  await page.evaluate(`location.hash = "#/${view}"`);
  await page.waitForSelector(`main[data-loaded="${view}"]`, { timeout: T(5000) });
}

Deno.test(
  "browser: a wrong password is refused, the API refuses a page without a session; after login the overview shows a door call live",
  opts,
  async () => {
    const gw = await startTestGateway();
    await addAdmin(gw);
    const phone = await openPhone(gw, "uid-a", { answer: "callok", enableVideo: "ws" });
    const door = await openDoor({ fps: 10, ringTimeoutS: 30 });
    try {
      await withBrowser({}, async (page) => {
        await logIn(page, gw, "not the password");
        await waitText(page, "#status", "Wrong name or password");
        await screenshot(page, "01-login-refused");
        const refused = await page.evaluate(
          `fetch("/api/v1/overview").then((r) => r.json().then((j) => [r.status, j.error.code]))`,
        );
        assertEquals(refused, [401, "unauthorized"]);

        await page.$eval("#password", (el) => ((el as unknown as { value: string }).value = ""));
        await page.type("#password", PASSWORD);
        await Promise.all([page.waitForNavigation(), page.click("#submit")]);
        await page.waitForSelector('main[data-loaded="overview"]');
        await waitText(page, "#live-state", "Live");
        assertEquals(await textOf(page, "#count-callsNow"), "0");

        const ringing = door.start();
        await phone.waitFor("call", T(5000));
        // Live through server-sent events: no reload.
        await waitText(page, "#count-callsNow", "1");
        await page.waitForSelector("#live-calls tr[data-call]");
        await waitText(page, "#live-calls", "M00010100");
        await page.waitForFunction(
          `Number(document.querySelector("#live-calls td.media")?.getAttribute("data-door-in") ?? "0") > 0`,
          { timeout: T(8000), polling: 200 },
        );
        await screenshot(page, "02-overview-live-call");
        await door.hangUp();
        await ringing;
        await waitText(page, "#count-callsNow", "0");
        await waitText(page, "#last-calls", "M00010100");
        await screenshot(page, "03-overview-after-call");
      });
    } finally {
      await phone.close().catch(() => {});
      await door.close().catch(() => {});
      await gw.close();
    }
  },
);

Deno.test(
  "browser: add a binding — its QR code decodes back to the provisioning link; removing the binding cuts the phone off",
  opts,
  async () => {
    const gw = await startTestGateway();
    await addAdmin(gw);
    let phone: PhoneSim | undefined;
    try {
      await withBrowser({}, async (page) => {
        await logIn(page, gw);
        await page.waitForSelector('main[data-loaded="overview"]');
        await go(page, "rooms");
        await page.type('#add-binding input[name="uid"]', "uid-qr");
        await page.type('#add-binding input[name="room"]', `Y${ROOM}`);
        await page.type('#add-binding input[name="community"]', "花苑");
        await page.click('#add-binding button[type="submit"]');
        await page.waitForSelector("#issued[open] #qr svg");
        const link = await textOf(page, "#issued-link");
        const token = await textOf(page, "#issued-token");
        assertEquals(
          link,
          `${gw.httpBase}/app/#uid=uid-qr&room=Y${ROOM}&token=${token}&community=%E8%8A%B1%E8%8B%91`,
        );
        const qr = await page.$("#qr");
        const png = await qr!.screenshot({ type: "png" }) as Uint8Array;
        assertEquals(await decodeQrPng(page, png), link, "the QR code is the provisioning link");
        await screenshot(page, "04-binding-qr");

        // The phone logs in with what the QR code gave it.
        phone = new PhoneSim({
          url: gw.url,
          uid: "uid-qr",
          token,
          roomAddress: `Y${ROOM}`,
          community: "花苑",
          heartbeatMs: 1000,
          script: { answer: "ring" },
        });
        await phone.start();
        await phone.waitFor("login ok", T(5000));
        await page.click("#issued-close");
        await waitText(page, '[data-uid="uid-qr"]', "online 127.0.0.1 (ws)");
        await screenshot(page, "05-rooms-phone-online");

        await page.click('[data-uid="uid-qr"] button.danger');
        await page.waitForSelector("#confirm[open]");
        await screenshot(page, "06-remove-confirm");
        const t0 = performance.now();
        await page.click("#confirm-yes");
        const closed = await phone.waitFor("closed", T(3000));
        assertEquals((closed as { code?: number }).code, 4004, "cut off: binding removed");
        assert(performance.now() - t0 < T(1500), "within a second or so");
        await page.waitForFunction(`!document.querySelector('[data-uid="uid-qr"]')`, {
          timeout: T(5000),
        });
        assertEquals(gw.app.hub.online(ROOM), []);
        await screenshot(page, "07-binding-removed");
      });
    } finally {
      await phone?.close().catch(() => {});
      await gw.close();
    }
  },
);

Deno.test(
  "browser: the trace shows the call's packets and orders; the history filters by room and shows the visitor snapshot",
  opts,
  async () => {
    const gw = await startTestGateway();
    await addAdmin(gw);
    const phone = await openPhone(gw, "uid-a", {
      answer: "talk",
      talkAfterS: 0.2,
      enableVideo: "ws",
    });
    const door = await openDoor({ fps: 10, ringTimeoutS: 30 });
    // A second door calling a second room, whose phone only rings (a missed call).
    const other = await openDoor({
      ip: "127.0.0.3",
      address: "M00010200",
      room: "S00010208090",
      fps: 10,
      ringTimeoutS: 1,
    });
    const phoneB = await openPhone(gw, "uid-b", { answer: "callok" }, "Y00010208090");
    try {
      await withBrowser({}, async (page) => {
        await logIn(page, gw);
        await page.waitForSelector('main[data-loaded="overview"]');
        await go(page, "trace");
        await page.type('#trace-filter input[name="door"]', "M00010100");
        await page.click('#trace-filter button[type="submit"]');
        await sleep(300);
        const ringing = door.start();
        await waitText(page, "#trace", "ASK CALL M00010100");
        await waitText(page, "#trace", "call ok uid=uid-a");
        await waitText(page, "#trace", "talk begin");
        await sleep(1500); // a few keep-alives
        await screenshot(page, "08-trace");
        const trace = await textOf(page, "#trace");
        assert(trace.includes("REPLY"), "the gateway's answers are traced too");
        assert(!trace.includes("M00010200"), "the door filter holds");
        await door.hangUp();
        await ringing;
        await other.start();

        await go(page, "calls");
        await page.waitForFunction(
          `document.querySelectorAll("#history tr[data-call]").length === 2`,
          { timeout: T(8000), polling: 200 },
        );
        await page.waitForFunction(
          `[...document.querySelectorAll("#history img.snap")].some((i) => i.complete && i.naturalWidth > 0)`,
          { timeout: T(8000), polling: 200 },
        );
        await page.type('#history-filter input[name="room"]', "Y00010208090");
        await page.click('#history-filter button[type="submit"]');
        await page.waitForFunction(
          `document.querySelectorAll("#history tr[data-call]").length === 1`,
          { timeout: T(8000), polling: 200 },
        );
        await waitText(page, "#history", "M00010200");
        await waitText(page, "#history", "missed");
        await screenshot(page, "09-history-filtered-room");
        await page.$eval(
          '#history-filter input[name="room"]',
          (el) => ((el as unknown as { value: string }).value = ""),
        );
        await page.type('#history-filter input[name="room"]', `S${ROOM}`);
        await page.select('#history-filter select[name="outcome"]', "answered");
        await page.click('#history-filter button[type="submit"]');
        await page.waitForSelector("#history tr[data-call] img.snap");
        await waitText(page, "#history", "answered");
        assertEquals(
          await page.evaluate(`document.querySelectorAll("#history tr[data-call]").length`),
          1,
        );
        assert(!(await textOf(page, "#history")).includes("M00010200"));
        await screenshot(page, "10-history-snapshot");
      });
    } finally {
      await phone.close().catch(() => {});
      await door.close().catch(() => {});
      await other.close().catch(() => {});
      await phoneB.close().catch(() => {});
      await gw.close();
    }
  },
);

Deno.test(
  "browser: the Chinese console on a phone-sized screen (from the browser's language), doors and charts; the switch goes back to English",
  opts,
  async () => {
    const gw = await startTestGateway();
    await addAdmin(gw);
    // A door is learned from a call that completed its handshake (answered, keep-alive replied).
    const phone = await openPhone(gw, "uid-a", { answer: "callok" });
    const door = await openDoor({ fps: 10, ringTimeoutS: 30 });
    try {
      const ringing = door.start();
      await phone.waitFor("call", T(5000));
      const deadline = Date.now() + T(5000);
      while (!gw.app.live.doors().length && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      await door.hangUp();
      await ringing;
      await withBrowser(
        { lang: "zh-CN", viewport: { width: 390, height: 844, isMobile: true } },
        async (page) => {
          await page.goto(`${gw.httpBase}/admin/login`, { waitUntil: "domcontentloaded" });
          await waitText(page, "h1", "登录管理控制台");
          await screenshot(page, "11-zh-phone-login");
          await page.type("#name", "manager");
          await page.type("#password", PASSWORD);
          await Promise.all([page.waitForNavigation(), page.click("#submit")]);
          await page.waitForSelector('main[data-loaded="overview"]');
          await waitText(page, "#overview", "在线手机");
          await screenshot(page, "12-zh-phone-overview");
          await go(page, "doors");
          await waitText(page, "#door-table", "M00010100");
          await waitText(page, "#door-table", "自动学习");
          await waitText(page, "#door-table td.calls-today", "1");
          await screenshot(page, "13-zh-phone-doors");
          await go(page, "charts");
          await page.waitForSelector("#charts svg.chart");
          await screenshot(page, "14-zh-phone-charts");
          // Every button has an accessible name.
          const unnamed = await page.evaluate(
            `[...document.querySelectorAll("button, input, select, a")].filter((e) => !(e.getAttribute("aria-label") || e.textContent.trim() || e.labels?.length || e.getAttribute("title"))).length`,
          );
          assertEquals(unnamed, 0);
          await page.click("#lang-switch");
          await waitText(page, "nav.sections", "Overview");
          await go(page, "audit");
          await waitText(page, "#audit-table", "login");
          await screenshot(page, "15-en-phone-audit");
        },
      );
    } finally {
      await phone.close().catch(() => {});
      await door.close().catch(() => {});
      await gw.close();
    }
  },
);

/** Nothing on the page is wider than the window (tables scroll inside their own box). */
async function assertNoOverflow(page: Page, what: string): Promise<void> {
  const [scroll, inner] = await page.evaluate(
    `[document.documentElement.scrollWidth, window.innerWidth]`,
  ) as [number, number];
  assert(scroll <= inner, `${what}: the page is ${scroll} px wide in a ${inner} px window`);
}

Deno.test(
  "browser: over HTTPS to a LAN name, the visitor snapshot of an H.264 door is its key frame decoded in the browser; an MPEG-4 door's is labelled; the Chinese console on a desktop and a phone",
  opts,
  async () => {
    const gw = await startTestGateway({ transcode: "off", httpsPort: 0 });
    await addAdmin(gw);
    const phone = await openPhone(gw, "uid-a", { answer: "callok", enableVideo: "ws" });
    const phoneB = await openPhone(gw, "uid-b", { answer: "callok" }, "Y00010208090");
    const h264 = new CodedVideoSource(await Deno.readFile(new URL("card.h264", FIXTURES)), "h264");
    const m4v = new CodedVideoSource(await Deno.readFile(new URL("card.m4v", FIXTURES)), "mpeg4");
    const door = await openDoor({ fps: 10, ringTimeoutS: 1.5, video: h264 });
    const other = await openDoor({
      ip: "127.0.0.3",
      address: "M00010200",
      room: "S00010208090",
      fps: 10,
      ringTimeoutS: 1.5,
      video: m4v,
    });
    try {
      await door.start();
      await other.start();
      const calls = await gw.app.records.recent(2);
      const kinds = await gw.app.snapshots.kinds(calls.map((c) => c.callId));
      assertEquals([...kinds.values()].sort(), ["h264", "mpeg4"]);
      // Over HTTPS to a name that is not localhost, as a manager on the LAN opens it (the name
      // mapped to loopback; the gateway's own certificate is not in this browser's store).
      const https = `https://gatebox.test:${gw.app.addresses.https!.port}`;
      const args = [
        "--host-resolver-rules=MAP gatebox.test 127.0.0.1",
        "--ignore-certificate-errors",
      ];
      await withBrowser({ lang: "zh-CN", args }, async (page) => {
        await logIn(page, gw, PASSWORD, https);
        await page.waitForSelector('main[data-loaded="overview"]');
        assertEquals(
          await page.evaluate(`[location.protocol, location.hostname, window.isSecureContext]`),
          ["https:", "gatebox.test", true],
        );
        await waitText(page, "#overview", "在线手机");
        await page.waitForSelector('#last-calls canvas.snap[data-drawn="true"]', {
          timeout: T(8000),
        });
        // The data volume's free and total space, in Chinese.
        await waitText(page, "#disk", "可用");
        assert(Number(await page.$eval("#disk span", (e) => e.getAttribute("data-total"))) > 0);
        await assertNoOverflow(page, "zh desktop overview");
        await screenshot(page, "16-zh-desktop-overview");
        await go(page, "calls");
        await page.waitForSelector('#history canvas.snap[data-drawn="true"]', { timeout: T(8000) });
        const size = await page.$eval(
          "#history canvas.snap",
          (
            c,
          ) => [
            (c as unknown as { width: number }).width,
            (c as unknown as { height: number }).height,
          ],
        );
        assertEquals(size, [352, 288], "the key frame's own size (CIF)");
        assertTestCard(await canvasBars(page, "#history canvas.snap"), "H.264 snapshot");
        const note = await textOf(page, '#history [data-snap="mpeg4"]');
        assert(note.includes("MPEG-4 门口机：无法预览"), note);
        assertEquals(
          await textOf(page, '#history td.reason[data-reason="door_hung_up"]'),
          "访客挂断",
        );
        await assertNoOverflow(page, "zh desktop calls");
        await screenshot(page, "17-zh-desktop-calls-h264-snapshot");
        await page.setViewport({ width: 390, height: 844, isMobile: true });
        await go(page, "overview");
        await go(page, "calls");
        await page.waitForSelector('#history canvas.snap[data-drawn="true"]', { timeout: T(8000) });
        await assertNoOverflow(page, "zh phone calls");
        await screenshot(page, "18-zh-phone-calls-h264-snapshot");
      });
    } finally {
      await phone.close().catch(() => {});
      await phoneB.close().catch(() => {});
      await door.close().catch(() => {});
      await other.close().catch(() => {});
      await gw.close();
    }
  },
);
