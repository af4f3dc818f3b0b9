/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/// <reference lib="deno.ns" />
/// <reference lib="esnext" />
/**
 * The web phone (`/app/`) in a real browser: headless Chromium on a phone-sized screen, a fake
 * microphone playing a 1 kHz tone in bursts, against the whole gateway in-process and the door
 * simulator on 127.0.0.2:8302. Runs only inside the private network namespace of
 * `deno task test`, and only where Chromium is installed (`.ci/run` installs it).
 *
 * Screenshots of every screen go to `.cache/screenshots/webphone-*.png`.
 */

import type { Page } from "puppeteer-core";
import { assert, assertEquals } from "./helpers/assert.ts";
import { startTestGateway, type TestGateway, TIME_SCALE } from "./helpers/gateway.ts";
import { openDoor, sleep } from "./helpers/sims.ts";
import {
  pageWait,
  phonePage,
  screenshot,
  toneWav,
  WEB_PHONE_TEST_OPTS,
  withBrowser,
} from "./helpers/browser.ts";
import { CodedVideoSource } from "../src/sim/media_source.ts";
import { assertTestCard, canvasBars } from "./helpers/test_card.ts";
import type { DoorSim } from "../src/sim/door_sim.ts";

const opts = WEB_PHONE_TEST_OPTS;
const T = (ms: number) => ms * TIME_SCALE;
const ROOM = "Y00010108090";
const FIXTURES = new URL("./fixtures/video/", import.meta.url);

/** The fake microphone: 1 kHz at -10.5 dBFS peak, 500 ms on, 500 ms off. */
const MIC = await (async () => {
  const path = await Deno.makeTempFile({ prefix: "webphone-mic-", suffix: ".wav" });
  await Deno.writeFile(
    path,
    toneWav({ hz: 1000, level: 0.3, onMs: 500, offMs: 500, totalMs: 8000 }),
  );
  return path;
})();
globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(MIC);
  } catch {
    // gone
  }
});

/** The web phone's diagnostics object (`window.webphone`), for page.evaluate. */
interface WebPhone {
  state(): {
    status: string;
    screen: string;
    call: null | { state: string; law: string; unlocked: boolean; outcome: string };
    rooms: { uid: string; roomAddress: string; removed: boolean }[];
    sessions: { uid: string; state: string; rooms: string[] }[];
    dnd: { mode: string };
    video: { codec: string | null; shown: number; unavailable: boolean };
  };
  stats: Record<string, unknown>;
  analyser(): AnalyserNode | null;
  audioContext(): AudioContext | null;
  onMicPacket: ((rms: number, wall: number) => void) | null;
}
declare const webphone: WebPhone;

function link(gw: TestGateway, uid: string, token: string, room = ROOM): string {
  const q = new URLSearchParams({ uid, room, token, community: "花苑" });
  return `${gw.httpBase}/app/#${q}`;
}

/** Binds `uid`, opens the provisioning link, waits until the app is online for the room. */
async function provision(page: Page, gw: TestGateway, uid: string, room = ROOM): Promise<string> {
  const token = await gw.bind(uid, room);
  await page.goto(link(gw, uid, token, room));
  await pageWait(
    page,
    () => webphone.state().sessions.some((s) => s.state === "online"),
    "the app online",
    T(10_000),
  );
  return token;
}

/** The button with accessible name `name`, visible now (a hidden one is not in the tree). */
async function button(page: Page, name: string) {
  const el = await page.$(`::-p-aria([name="${name}"][role="button"])`);
  assert(el, `no visible button named ${JSON.stringify(name)}`);
  return el;
}

/** Waits until the canvas shows `frames` decoded frames. */
function waitVideo(page: Page, frames = 3): Promise<unknown> {
  return pageWait(page, () => webphone.state().video.shown, "video", T(10_000)).then(() =>
    pageWait(
      page,
      new Function(`return webphone.state().video.shown >= ${frames}`) as () => boolean,
      `${frames} video frames`,
      T(10_000),
    )
  );
}

/** What the page hears of the door: peak frequency and RMS of the playback (AnalyserNode). */
function pagePlayback(page: Page): Promise<{ hz: number; rms: number }> {
  return page.evaluate(() => {
    const a = webphone.analyser()!;
    const f = new Float32Array(a.frequencyBinCount);
    a.getFloatFrequencyData(f);
    let best = 0;
    for (let i = 1; i < f.length; i++) if (f[i]! > f[best]!) best = i;
    const td = new Float32Array(a.fftSize);
    a.getFloatTimeDomainData(td);
    const rms = Math.sqrt(td.reduce((s, v) => s + v * v, 0) / td.length);
    return { hz: (best * a.context.sampleRate) / a.fftSize, rms };
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function closeAll(...xs: ({ close(): Promise<unknown> } | undefined)[]): Promise<void> {
  for (const x of xs) await x?.close().catch(() => {});
}

Deno.test(
  "web phone: provisioning link, MJPEG door rings with live video, answer with two-way audio (latency), open door, hang up",
  opts,
  async () => {
    const gw = await startTestGateway();
    let door: DoorSim | undefined;
    try {
      await withBrowser({ fakeAudio: MIC }, async (browser) => {
        const { page, errors } = await phonePage(browser);
        await page.goto(`${gw.httpBase}/app/`);
        await pageWait(page, () => webphone.state().screen === "setup", "the setup screen");
        await screenshot(page, "webphone-01-setup");

        // Provisioning: credentials stored on the device, the secret gone from the address bar.
        const token = await provision(page, gw, "web-a");
        assertEquals(await page.evaluate(() => location.hash), "");
        const stored = await page.evaluate(() => localStorage.getItem("wp.rooms"));
        assert(stored?.includes(token) && stored.includes(ROOM), "credentials on the device");
        // One device, several rooms (another uid here: a second connection of the app).
        const token2 = await gw.bind("web-a2", "Y00010108091");
        await page.evaluate(
          (u) => (location.hash = u),
          link(gw, "web-a2", token2, "Y00010108091").split("#")[1]!,
        );
        await pageWait(
          page,
          () => webphone.state().sessions.filter((s) => s.state === "online").length === 2,
          "both rooms online",
        );
        assertEquals(gw.app.hub.online("00010108091"), ["web-a2"]);
        await screenshot(page, "webphone-02-home");

        // Mic latency: the page's capture onsets (wall ms) of the fake microphone's bursts.
        await page.evaluate(() => {
          const w = window as unknown as { micOnsets: number[] };
          w.micOnsets = [];
          let loud = false;
          webphone.onMicPacket = (rms, wall) => {
            if (rms > 0.03 && !loud) w.micOnsets.push(wall);
            loud = rms > 0.03;
          };
        });

        door = await openDoor({ fps: 10, toneMuted: true });
        const summary = door.start();
        await pageWait(page, () => webphone.state().call?.state === "ringing", "the ringing call");
        await waitVideo(page);
        assertTestCard(await canvasBars(page, "#video"), "MJPEG while ringing");
        assert(Number(await page.evaluate(() => webphone.stats.rings)) >= 1, "the ringtone played");
        const title = await page.$eval("#call-door", (e) => e.textContent ?? "");
        assert(title.includes("M00010100"), `the calling door is named: ${title}`);
        await screenshot(page, "webphone-03-ringing-mjpeg");

        // Answer: talk → talk begin; audio both ways.
        await (await button(page, "Answer")).click();
        await pageWait(page, () => webphone.state().call?.state === "talking", "talking", T(5000));
        await pageWait(page, () => Number(webphone.stats.audioIn) > 40, "door audio in the page");
        // Door → speaker latency: the door's tone starts now; the page hears it at T1.
        const heard = page.evaluate(() =>
          new Promise<number>((resolve) => {
            const a = webphone.audioContext()!.createAnalyser();
            a.fftSize = 128;
            webphone.analyser()!.connect(a);
            const buf = new Float32Array(a.fftSize);
            const id = setInterval(() => {
              a.getFloatTimeDomainData(buf);
              let s = 0;
              for (const v of buf) s += v * v;
              if (Math.sqrt(s / buf.length) > 0.05) {
                clearInterval(id);
                resolve(performance.timeOrigin + performance.now());
              }
            }, 2);
          })
        );
        await sleep(300);
        const t0 = door.setTone(true);
        const t1 = await heard;
        const outputLatency = await page.evaluate(() => {
          const c = webphone.audioContext()!;
          return (c.baseLatency + (c.outputLatency || 0)) * 1000;
        });
        const doorToSpeaker = t1 - t0;
        await sleep(T(2500));

        const play = await pagePlayback(page);
        const rx = door.receivedAudio();
        const micOnsets = await page.evaluate(() =>
          (window as unknown as { micOnsets: number[] }).micOnsets
        );
        // Each burst the door heard, against the last burst the page captured before it.
        const lat = rx.onsets.map((d) => d - Math.max(...micOnsets.filter((m) => m <= d)))
          .filter((x) => Number.isFinite(x) && x < 500);
        const micToDoor = median(lat);
        // deno-lint-ignore no-console
        console.log(
          `  latency door→speaker ${doorToSpeaker.toFixed(0)} ms (+ output ${
            outputLatency.toFixed(0)
          } ms reported by the AudioContext), mic→door ${
            micToDoor.toFixed(0)
          } ms (median of ${lat.length} bursts); ` +
            `door hears ${rx.frequencyHz.toFixed(0)} Hz at ${
              (20 * Math.log10(rx.rms)).toFixed(1)
            } dBFS; page plays ${play.hz.toFixed(0)} Hz at ${
              (20 * Math.log10(play.rms)).toFixed(1)
            } dBFS`,
        );
        assert(rx.loudPackets > 50, `the door heard the phone: ${JSON.stringify(rx)}`);
        assert(Math.abs(rx.frequencyHz - 1000) < 40, `the door hears ${rx.frequencyHz} Hz`);
        assert(rx.rms > 0.03 && rx.rms < 0.5, `the door hears rms ${rx.rms}`);
        assert(Math.abs(play.hz - 400) < 16, `the page plays ${play.hz} Hz`);
        assert(play.rms > 0.1 && play.rms < 0.25, `the page plays rms ${play.rms} (0.177 sent)`);
        // The printed figures are the measurement (~60–90 ms + the output's own on a quiet
        // machine); the bound is only a generous end-to-end margin for a loaded 2-core one.
        assert(
          doorToSpeaker > 0 && doorToSpeaker + outputLatency < T(300),
          `door→speaker ${doorToSpeaker} ms + output ${outputLatency} ms`,
        );
        assert(lat.length >= 2 && micToDoor < T(300), `mic→door ${micToDoor} ms (${lat})`);
        await screenshot(page, "webphone-04-talking");

        // Mute: nothing more reaches the door.
        await (await button(page, "Mute")).click();
        await sleep(200);
        const muted = door.counters.audioPlayed;
        await sleep(500);
        assert(door.counters.audioPlayed - muted < 5, "muted: no audio to the door");
        assertEquals(await page.$eval("#btn-mute", (e) => e.getAttribute("aria-pressed")), "true");
        await (await button(page, "Mute")).click();

        // Open door while talking.
        await (await button(page, "Open door")).click();
        await door.when("lock_opened");
        await pageWait(page, () => webphone.state().call?.unlocked, "door opened in the app");
        assert((await page.$eval("#call-outcome", (e) => e.textContent)) === "Door opened");
        await screenshot(page, "webphone-05-door-opened");

        // Hang up: CALLEND to the door, the app back to idle with the call in its history.
        await (await button(page, "Hang up")).click();
        const s = await summary;
        assertEquals([s.reason, s.talked, s.locksOpened], ["ended_by_gateway", true, 1]);
        await pageWait(page, () => webphone.state().call?.state === "ended", "the call ended");
        await screenshot(page, "webphone-06-call-ended");
        await pageWait(page, () => webphone.state().screen === "home", "idle again", T(5000));
        const history = await page.$eval("#history", (e) => e.textContent ?? "");
        assert(history.includes("Call ended") && history.includes("door opened"), history);
        await screenshot(page, "webphone-07-history");
        const rec = (await gw.app.records.recent(1))[0]!;
        assertEquals([rec.endReason, rec.answeredBy], ["phone_hung_up", "web-a"]);
        assertEquals(errors, []);
      });
    } finally {
      await closeAll(door, gw);
    }
  },
);

Deno.test("web phone: an H.264 door decoded with WebCodecs", opts, async () => {
  const gw = await startTestGateway();
  let door: DoorSim | undefined;
  try {
    await withBrowser({ fakeAudio: MIC }, async (browser) => {
      const { page, errors } = await phonePage(browser);
      await provision(page, gw, "web-h");
      const video = new CodedVideoSource(
        await Deno.readFile(new URL("card.h264", FIXTURES)),
        "h264",
      );
      door = await openDoor({ fps: 10, video });
      void door.start();
      await waitVideo(page, 5);
      const state = await page.evaluate(() => webphone.state().video);
      assertEquals([state.codec, state.unavailable], ["h264", false]);
      assertTestCard(await canvasBars(page, "#video"), "H.264");
      await screenshot(page, "webphone-08-ringing-h264");
      await (await button(page, "Hang up")).click();
      assertEquals((await door.done).reason, "ended_by_gateway");
      assertEquals(errors, []);
    });
  } finally {
    await closeAll(door, gw);
  }
});

Deno.test(
  "web phone: an MPEG-4 door is converted to JPEG by the gateway; with --transcode off the app says video is not available",
  opts,
  async () => {
    const m4v = await Deno.readFile(new URL("card.m4v", FIXTURES));
    await withBrowser({ fakeAudio: MIC }, async (browser) => {
      for (const transcode of ["auto", "off"] as const) {
        const gw = await startTestGateway({ transcode });
        let door: DoorSim | undefined;
        try {
          const { page, errors } = await phonePage(browser);
          await provision(page, gw, `web-m-${transcode}`);
          door = await openDoor({ fps: 10, video: new CodedVideoSource(m4v, "mpeg4") });
          void door.start();
          if (transcode === "auto") {
            await waitVideo(page, 3);
            assertEquals(await page.evaluate(() => webphone.state().video.codec), "jpeg");
            assertTestCard(await canvasBars(page, "#video"), "MPEG-4 converted");
            await screenshot(page, "webphone-09-mpeg4-converted");
          } else {
            await pageWait(page, () => webphone.state().video.unavailable, "video unavailable");
            const note = await page.$eval("#video-note", (e) => e.textContent);
            assertEquals(note, "Video not available for this door");
            await screenshot(page, "webphone-10-mpeg4-unavailable");
          }
          await (await button(page, "Hang up")).click();
          await door.done;
          assertEquals(errors, []);
          await page.close();
        } finally {
          await closeAll(door, gw);
        }
        assertEquals(
          gw.app.metrics.get("transcode_sessions_total", { codec: "mpeg4" }),
          transcode === "auto" ? 1 : 0,
          "one ffmpeg for the call, none when off",
        );
      }
    });
  },
);

Deno.test(
  "web phone: two devices of one room ring; the first Answer wins, the other (in Chinese) shows answered elsewhere",
  opts,
  async () => {
    const gw = await startTestGateway();
    let door: DoorSim | undefined;
    try {
      await withBrowser({ fakeAudio: MIC }, async (browser) => {
        const one = await phonePage(await browser.createBrowserContext());
        const two = await phonePage(await browser.createBrowserContext());
        await two.page.evaluateOnNewDocument(() => {
          Object.defineProperty(navigator, "languages", { get: () => ["zh-CN", "zh"] });
          Object.defineProperty(navigator, "language", { get: () => "zh-CN" });
        });
        await provision(one.page, gw, "web-1");
        await provision(two.page, gw, "web-2");
        door = await openDoor({ fps: 10 });
        void door.start();
        for (const p of [one.page, two.page]) {
          await pageWait(p, () => webphone.state().call?.state === "ringing", "ringing");
        }
        await waitVideo(two.page, 2);
        // The Chinese screen names its buttons 接听, 开锁, 挂断.
        for (const name of ["接听", "开锁", "挂断"]) await button(two.page, name);
        await screenshot(two.page, "webphone-11-ringing-zh");
        await (await button(one.page, "Answer")).click();
        await pageWait(one.page, () => webphone.state().call?.state === "talking", "talking");
        await pageWait(two.page, () => webphone.state().call?.state === "ended", "ended there");
        const title = await two.page.$eval("#call-title", (e) => e.textContent);
        assertEquals(title, "已在其他手机接听");
        await screenshot(two.page, "webphone-12-answered-elsewhere-zh");
        await button(one.page, "Mute");
        await (await button(one.page, "Hang up")).click();
        assertEquals((await door.done).reason, "ended_by_gateway");
        await pageWait(two.page, () => webphone.state().screen === "home", "idle", T(5000));
        const history = await two.page.$eval("#history", (e) => e.textContent ?? "");
        assert(history.includes("已在其他手机接听"), history);
        assertEquals([...one.errors, ...two.errors], []);
      });
    } finally {
      await closeAll(door, gw);
    }
  },
);

Deno.test(
  "web phone: a removed binding (4004) and a rotated token (refused login, 4001) show the removed message, with no reconnect loop",
  opts,
  async () => {
    const gw = await startTestGateway();
    try {
      await withBrowser({}, async (browser) => {
        const { page, errors } = await phonePage(browser);
        await provision(page, gw, "web-r");
        await gw.app.bindings.remove("web-r", ROOM);
        await pageWait(
          page,
          () =>
            /removed by the building manager/.test(document.getElementById("notice")!.textContent!),
          "the removed message",
          T(5000),
        );
        assertEquals(await page.evaluate(() => webphone.state().rooms[0]!.removed), true);
        await screenshot(page, "webphone-13-removed");
        // Opened again later, the phone still says why it no longer rings.
        await page.reload();
        await pageWait(
          page,
          () =>
            document.getElementById("notice")!.textContent ===
              "This phone was removed by the building manager.",
          "the removed message after a reload",
          T(5000),
        );

        // A rotated token: the stored one is refused at the next login.
        const ctx = await browser.createBrowserContext();
        const other = await phonePage(ctx);
        const old = await provision(other.page, gw, "web-s");
        const rotated = await gw.bind("web-s", ROOM);
        assert(rotated !== old);
        await other.page.reload();
        await pageWait(
          other.page,
          () => webphone.state().rooms[0]?.removed === true,
          "the refused login seen as removed",
          T(5000),
        );
        const connects = Number(await other.page.evaluate(() => webphone.stats.connects));
        await sleep(T(2500));
        assertEquals(
          Number(await other.page.evaluate(() => webphone.stats.connects)),
          connects,
          "no reconnect with a refused token",
        );
        const notice = await other.page.$eval("#notice", (e) => e.textContent);
        assertEquals(notice, "This phone was removed by the building manager.");
        assertEquals(gw.app.hub.online("00010108090"), []);
        assertEquals([...errors, ...other.errors].filter((e) => !/WebSocket/.test(e)), []);
      });
    } finally {
      await gw.close();
    }
  },
);

Deno.test(
  "web phone: do-not-disturb: the door is not offered the room (NS unanswered); off again, it rings",
  opts,
  async () => {
    const gw = await startTestGateway();
    let door: DoorSim | undefined;
    try {
      await withBrowser({}, async (browser) => {
        const { page, errors } = await phonePage(browser);
        await provision(page, gw, "web-d");
        await (await button(page, "1 hour")).click();
        const until = await pageWait(page, () => webphone.state().dnd.mode === "until", "DND on");
        assert(until);
        for (let i = 0; i < 50 && gw.app.hub.online("00010108090").length; i++) await sleep(20);
        assertEquals(gw.app.hub.online("00010108090"), [], "not online for the doors");
        const state = await page.$eval("#dnd-state", (e) => e.textContent ?? "");
        assert(/Do not disturb until/.test(state), state);
        await screenshot(page, "webphone-14-dnd");
        door = await openDoor({ fps: 10 });
        assertEquals((await door.start()).reason, "ns_unanswered");
        assertEquals(await page.evaluate(() => webphone.state().call), null);

        await (await button(page, "Off")).click();
        for (let i = 0; i < 50 && !gw.app.hub.online("00010108090").length; i++) await sleep(20);
        door = await openDoor({ fps: 10 });
        void door.start();
        await pageWait(page, () => webphone.state().call?.state === "ringing", "ringing again");
        await (await button(page, "Hang up")).click();
        await door.done;
        assertEquals(errors, []);
      });
    } finally {
      await closeAll(door, gw);
    }
  },
);

Deno.test(
  "web phone: installable; reconnects after the gateway restarts; opens offline from its service worker and says the gateway is unreachable",
  opts,
  async () => {
    let gw = await startTestGateway();
    const port = gw.app.addresses.http.port;
    const data = gw.data;
    try {
      await withBrowser({}, async (browser) => {
        const { page } = await phonePage(browser);
        await provision(page, gw, "web-o");
        await pageWait(
          page,
          () => navigator.serviceWorker.controller !== null,
          "the service worker in control",
        );
        const cdp = await page.createCDPSession();
        const installable = await cdp.send("Page.getInstallabilityErrors");
        assertEquals(installable.installabilityErrors, [], "installable as an app");
        const manifest = await cdp.send("Page.getAppManifest");
        assertEquals(manifest.errors, []);

        await gw.close({ keepData: true });
        await pageWait(page, () => webphone.state().status === "offline", "offline", T(5000));
        gw = await startTestGateway({ httpPort: port, data });
        await pageWait(page, () => webphone.state().status === "online", "online again", T(15_000));
        assertEquals(gw.app.hub.online("00010108090"), ["web-o"]);

        await gw.close({ keepData: true });
        await page.reload();
        await pageWait(
          page,
          () => !document.getElementById("unreachable")!.hidden,
          "the unreachable notice, offline",
          T(10_000),
        );
        const text = await page.$eval("#unreachable", (e) => e.textContent ?? "");
        assert(/gateway is unreachable/.test(text), text);
        await screenshot(page, "webphone-15-offline-unreachable");
        gw = await startTestGateway({ httpPort: port, data });
        await pageWait(page, () => webphone.state().status === "online", "online", T(15_000));
      });
    } finally {
      await gw.close();
    }
  },
);
