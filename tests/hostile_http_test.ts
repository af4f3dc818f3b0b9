/**
 * Hostile phone clients end to end, against the whole gateway on loopback inside the private
 * namespace: fragmented messages without end, unmasked frames, slow and idle connections, a
 * socket that floods and never reads (before login and after, and during a talking call).
 * Each test is bounded in bytes and time and prints the figure it measured (RSS, rates, counts).
 */

import { assert, assertEquals } from "./helpers/assert.ts";
import { startTestGateway, type TestGateway, TIME_SCALE } from "./helpers/gateway.ts";
import { inNetns } from "./helpers/netns.ts";
import { openDoor, openPhone, sleep } from "./helpers/sims.ts";
import { within } from "./helpers/wait.ts";
import { clientFrame, OPCODE, RawWs, writeAll } from "./helpers/raw_ws.ts";

const opts = { ignore: !inNetns };
const MiB = 1024 * 1024;
const ROOM = "Y00010108090";

function rssMB(): number {
  return Math.round(Deno.memoryUsage().rss / 1e6);
}

function figure(name: string, values: Record<string, unknown>): void {
  // deno-lint-ignore no-console
  console.log(`FIGURE ${name} ${JSON.stringify(values)}`);
}

async function login(gw: TestGateway, ws: RawWs, uid: string): Promise<void> {
  const token = await gw.bind(uid, ROOM);
  await ws.sendText(
    JSON.stringify({ order: "login", uid, roomAddress: ROOM, community: "花苑", token }),
  );
  const f = await ws.next();
  assert(f && new TextDecoder().decode(f.payload).includes('"login ok"'), "login ok");
}

/** Sends a FIN=0 text frame, then 64 KiB continuations, until the server's close or `limit`. */
async function fragmentFlood(ws: RawWs, limit: number): Promise<{ sent: number; code?: number }> {
  const chunk = new Uint8Array(64 * 1024).fill(0x61);
  const first = clientFrame(OPCODE.text, chunk, { fin: false });
  const cont = clientFrame(OPCODE.continuation, chunk, { fin: false });
  let code: number | undefined;
  let ended = false;
  const reading = ws.closeCode().then((c) => {
    code = c;
    ended = true;
  });
  let sent = 0;
  try {
    await writeAll(ws.conn, first);
    sent += first.length;
    while (!ended && sent < limit) {
      await writeAll(ws.conn, cont);
      sent += cont.length;
    }
  } catch {
    // the server ended the connection
  }
  await within(reading, 5000 * TIME_SCALE);
  return { sent, ...(code !== undefined ? { code } : {}) };
}

Deno.test(
  "a fragmented message over 64 KiB closes the connection with 1009, before login and after, unbuffered",
  opts,
  async () => {
    const gw = await startTestGateway();
    try {
      for (const phase of ["before login", "after login"]) {
        const ws = await RawWs.open(gw.app.addresses.http.port);
        if (phase === "after login") await login(gw, ws, "frag");
        const before = rssMB();
        const t0 = performance.now();
        const r = await fragmentFlood(ws, 256 * MiB);
        const after = rssMB();
        ws.close();
        figure(`fragment flood ${phase}`, {
          sentMiB: +(r.sent / MiB).toFixed(2),
          closeCode: r.code,
          ms: Math.round(performance.now() - t0),
          rssBeforeMB: before,
          rssAfterMB: after,
        });
        assertEquals(r.code, 1009);
        assert(r.sent < 64 * MiB, `${r.sent} bytes sent before the close`);
        assert(after - before < 64, `RSS ${before} → ${after} MB`);
      }
      assertEquals(
        gw.app.metrics.get("ws_closed_by_server_total", { reason: "message_too_big" }),
        2,
      );
      const h = await fetch(`${gw.httpBase}/healthz`);
      assertEquals((await h.json()).ok, true);
    } finally {
      await gw.close();
    }
  },
);

Deno.test(
  "an unmasked client frame closes the connection with 1002 (RFC 6455 §5.1)",
  opts,
  async () => {
    const gw = await startTestGateway();
    const ws = await RawWs.open(gw.app.addresses.http.port);
    try {
      await ws.write(clientFrame(OPCODE.text, "{}", { unmasked: true }));
      assertEquals(await within(ws.closeCode(), 3000 * TIME_SCALE), 1002);
      assertEquals(
        gw.app.metrics.get("ws_closed_by_server_total", { reason: "protocol_error" }),
        1,
      );
    } finally {
      ws.close();
      await gw.close();
    }
  },
);

Deno.test(
  "idle and slow-header (slowloris) connections are closed 5 s after they opened",
  opts,
  async () => {
    const gw = await startTestGateway();
    const port = gw.app.addresses.http.port;
    const idle = await Deno.connect({ hostname: "127.0.0.1", port });
    const slow = await Deno.connect({ hostname: "127.0.0.1", port });
    const t0 = performance.now();
    const closedAt = (c: Deno.Conn) =>
      c.read(new Uint8Array(64)).then(() => performance.now() - t0, () => performance.now() - t0);
    const idleClosed = closedAt(idle);
    const slowClosed = closedAt(slow);
    let lines = 0;
    const enc = new TextEncoder();
    await slow.write(enc.encode("GET /healthz HTTP/1.1\r\nHost: gw\r\n"));
    const drip = setInterval(() => {
      slow.write(enc.encode(`X-Drip-${lines++}: y\r\n`)).catch(() => {});
    }, 1000);
    try {
      const [a, b] = await Promise.all([
        within(idleClosed, 9000 * TIME_SCALE),
        within(slowClosed, 9000 * TIME_SCALE),
      ]);
      figure("head timeout", {
        idleClosedMs: Math.round(a ?? -1),
        slowClosedMs: Math.round(b ?? -1),
        slowLines: lines,
      });
      assert(a !== undefined && a >= 4500 && b !== undefined && b >= 4500, `${a} ${b}`);
      assertEquals(gw.app.metrics.get("http_head_timeouts_total"), 2);
      const h = await fetch(`${gw.httpBase}/healthz`);
      assertEquals(h.status, 200);
      await h.body?.cancel();
    } finally {
      clearInterval(drip);
      idle.close();
      slow.close();
      await gw.close();
    }
  },
);

/** Floods `frame` for `ms` without reading; returns the number of frames written. */
async function floodWithoutReading(
  ws: RawWs,
  frame: Uint8Array,
  ms: number,
  maxFrames = Infinity,
): Promise<number> {
  const batch = new Uint8Array(frame.length * 512);
  for (let i = 0; i < 512; i++) batch.set(frame, i * frame.length);
  const end = performance.now() + ms;
  let n = 0;
  try {
    while (performance.now() < end && n < maxFrames) {
      await writeAll(ws.conn, batch);
      n += 512;
    }
  } catch {
    // dropped by the server
  }
  return n;
}

/** The slowest `/healthz` answer while `during` runs. */
async function healthLatency(gw: TestGateway, during: Promise<unknown>): Promise<number> {
  let worst = 0;
  let done = false;
  void during.finally(() => (done = true));
  while (!done) {
    const t = performance.now();
    const r = await fetch(`${gw.httpBase}/healthz`);
    await r.body?.cancel();
    worst = Math.max(worst, performance.now() - t);
    await sleep(100);
  }
  return worst;
}

Deno.test(
  "a socket that sends {} and never reads: 20 error replies a second, the rest counted; memory flat",
  opts,
  async () => {
    const gw = await startTestGateway();
    const ws = await RawWs.open(gw.app.addresses.http.port);
    try {
      const before = rssMB();
      const t0 = performance.now();
      const flood = floodWithoutReading(ws, clientFrame(OPCODE.text, "{}"), 3000);
      const worst = await healthLatency(gw, flood);
      const sent = await flood;
      await sleep(300);
      const after = rssMB();
      const unanswered = gw.app.metrics.get("phone_errors_unanswered_total", {
        code: "bad_request",
      });
      const answered = gw.app.metrics.get("phone_errors_total", { code: "bad_request" }) -
        unanswered;
      const elapsedS = (performance.now() - t0) / 1000;
      figure("{} flood, never reading", {
        framesSent: sent,
        handled: answered + unanswered,
        answered,
        unanswered,
        answeredPerS: +(answered / elapsedS).toFixed(1),
        worstHealthzMs: Math.round(worst),
        rssBeforeMB: before,
        rssAfterMB: after,
      });
      assert(answered <= 20 + 20 * elapsedS, `${answered} replies in ${elapsedS} s`);
      assert(unanswered > 1000, `${unanswered} unanswered`);
      assert(worst < 1000 * TIME_SCALE, `/healthz took ${worst} ms`);
      assert(after - before < 100, `RSS ${before} → ${after} MB`);
    } finally {
      ws.close();
      await gw.close();
    }
  },
);

Deno.test(
  "a logged-in socket that floods heartbeats and never reads is dropped once 1 MiB is unsent",
  opts,
  async () => {
    const gw = await startTestGateway();
    const ws = await RawWs.open(gw.app.addresses.http.port);
    try {
      await login(gw, ws, "hb");
      const before = rssMB();
      // ~220,000 heartbeats fill the kernel's buffers and then 1 MiB of our own (natively in
      // ~5 s). Bounded by count and by time; an emulated gateway handles them at a tenth of the
      // rate, so the flood may end before it has read them all: then wait for it to catch up.
      const sent = await floodWithoutReading(
        ws,
        clientFrame(OPCODE.text, JSON.stringify({ order: "heartbeat", uid: "hb" })),
        30_000 * TIME_SCALE,
        600_000,
      );
      const backpressure = () =>
        gw.app.metrics.get("ws_closed_by_server_total", { reason: "backpressure" });
      const until = performance.now() + 10_000 * TIME_SCALE;
      while (backpressure() === 0 && performance.now() < until) await sleep(100);
      const after = rssMB();
      const drops = backpressure();
      figure("heartbeat flood, never reading", {
        framesSent: sent,
        droppedForBackpressure: drops,
        rssBeforeMB: before,
        rssAfterMB: after,
      });
      assertEquals(drops, 1);
      assertEquals(gw.app.hub.size, 0);
      assert(after - before < 100, `RSS ${before} → ${after} MB`);
    } finally {
      ws.close();
      await gw.close();
    }
  },
);

Deno.test(
  "during a talking call, a {} flood on another socket leaves the door's keep-alive on time",
  opts,
  async () => {
    const gw = await startTestGateway();
    const phone = await openPhone(gw, "p1", { answer: "talk", talkAfterS: 0.2 });
    const door = await openDoor({ ringTimeoutS: 30 });
    const ws = await RawWs.open(gw.app.addresses.http.port);
    try {
      void door.start();
      await door.when("talk");
      await sleep(500);
      const confirms0 = door.counters.confirmsReceived;
      const t0 = performance.now();
      const from = door.events.length;
      await floodWithoutReading(ws, clientFrame(OPCODE.text, "{}"), 5000);
      const s = (performance.now() - t0) / 1000;
      const confirms = door.counters.confirmsReceived - confirms0;
      const times = door.events.slice(from).filter((e) => e.type === "confirm_received").map((e) =>
        e.t
      );
      const gaps = times.slice(1).map((t, i) => t - times[i]!);
      const worstGap = Math.max(0, ...gaps);
      figure("keep-alive during a {} flood", {
        floodS: +s.toFixed(1),
        callconfirms: confirms,
        perSecond: +(confirms / s).toFixed(2),
        worstGapMs: Math.round(worstGap),
        handled: gw.app.metrics.get("phone_errors_total", { code: "bad_request" }),
      });
      // CALLCONFIRM every 500 ms: 2 a second; no gap near the door's 6 s give-up.
      if (TIME_SCALE > 1) {
        // Emulated (qemu-user): one isolate runs the whole suite, and a full GC after the earlier
        // floods can pause it for seconds. What must hold is the door's view: no gap as long as its
        // 6-s keep-alive window, and the call still talking (checked below).
        assert(confirms >= Math.floor(s / 3), `${confirms} CALLCONFIRMs in ${s} s`);
        assert(worstGap < 6000, `a ${worstGap} ms gap between CALLCONFIRMs`);
      } else {
        assert(confirms >= Math.floor(s * 2) - 2, `${confirms} CALLCONFIRMs in ${s} s`);
        assert(worstGap < 1000, `a ${worstGap} ms gap between CALLCONFIRMs`);
      }
      assertEquals(gw.app.manager.byRoom("00010108090")?.phase, "talking");
      assertEquals(door.phase, "talking");
    } finally {
      ws.close();
      await door.close();
      await phone.close();
      await gw.close();
    }
  },
);

Deno.test(
  "a ping gets its pong; a close frame gets its close echoed, then the connection ends",
  opts,
  async () => {
    const gw = await startTestGateway();
    const ws = await RawWs.open(gw.app.addresses.http.port);
    try {
      await ws.write(clientFrame(OPCODE.ping, "are you there"));
      const pong = await ws.next();
      assertEquals([pong?.opcode, new TextDecoder().decode(pong?.payload)], [
        OPCODE.pong,
        "are you there",
      ]);
      await ws.write(clientFrame(OPCODE.close, new Uint8Array([0x03, 0xe8])));
      assertEquals(await within(ws.closeCode(), 3000 * TIME_SCALE), 1000);
      assertEquals(await within(ws.next(), 3000 * TIME_SCALE), undefined);
      await sleep(50);
      assertEquals(gw.app.hub.size, 0);
    } finally {
      ws.close();
      await gw.close();
    }
  },
);
