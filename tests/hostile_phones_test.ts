/**
 * Hostile clients and floods, round two, end to end (inside the private namespace only, loopback,
 * bounded in count and time): an unlock flood's audit, a resident locked out by someone else's
 * wrong logins, a phone of the call taking the talker's media, a talker sending faster than real
 * time, and the shutdown's `over` reason.
 *
 * `INTERCOM_TEST_FIGURES=1` prints each test's measured figures to stderr.
 */

import { assert, assertEquals } from "./helpers/assert.ts";
import { startTestGateway, TIME_SCALE } from "./helpers/gateway.ts";
import { inNetns } from "./helpers/netns.ts";
import { openDoor, openPhone, sleep } from "./helpers/sims.ts";
import { openRawPhone } from "./helpers/raw_phone.ts";
import { denoCommand, RUN_FLAGS } from "./helpers/process.ts";
import { openUdpPort } from "../src/net/udp.ts";
import type { DatagramPort } from "../src/net/port.ts";
import { DoorSim } from "../src/sim/door_sim.ts";
import { encodeMediaControl } from "../src/phone/messages.ts";
import { DATA_TYPE, encodeMedia, OFFSET, OP } from "../src/protocol/mod.ts";

const opts = { ignore: !inNetns };
const T = (ms: number) => ms * TIME_SCALE;
const ROOM = "Y00010108090";
const MAIN = new URL("../main.ts", import.meta.url).pathname;

function figure(what: string, values: Record<string, unknown>): void {
  if (!Deno.env.get("INTERCOM_TEST_FIGURES")) return;
  // deno-lint-ignore no-console
  console.error(`FIGURE ${what} ${JSON.stringify(values)}`);
}

const login = (uid: string, token: string) => ({
  order: "login",
  uid,
  roomAddress: ROOM,
  community: "花苑",
  token,
});

/** Datagrams `sock` receives within `ms` (any: acknowledgements and media). */
async function received(sock: DatagramPort, ms: number): Promise<number> {
  let n = 0;
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const r = await Promise.race([sock.receive(), sleep(end - Date.now()).then(() => undefined)]);
    if (r) n++;
  }
  return n;
}

async function metric(base: string, line: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const m = text.split("\n").find((l) => l.startsWith(line + " "));
  return m ? Number(m.slice(line.length + 1)) : 0;
}

function audioPacket(): Uint8Array {
  return encodeMedia({
    op: OP.CALLDOWN,
    caller: "M00010100",
    callerIp: "0.0.0.0",
    callee: "S00010108090",
    calleeIp: "0.0.0.0",
    timestamp: 0,
    dataType: DATA_TYPE.AUDIO,
    frameNo: 1,
    payload: new Uint8Array(64).fill(0xff),
  });
}

Deno.test(
  "resident lockout: other sources' wrong tokens for a uid never refuse its correct token",
  opts,
  async () => {
    const gw = await startTestGateway();
    const token = await gw.bind("victim", ROOM);
    try {
      // Someone else guesses the victim's token from two other addresses, 12 tries each.
      const answers: string[] = [];
      for (const ip of ["127.0.0.9", "127.0.0.10"]) {
        for (let i = 0; i < 12; i++) {
          const p = await openRawPhone(gw.url, ip);
          p.send(login("victim", "wrong-token-" + i));
          const r = await p.next("error", T(3000));
          answers.push(`${ip}:${r?.code}`);
          await p.close();
        }
      }
      // The guessing rate per source stays what it was: 10 wrong tokens, then rate_limited.
      for (const ip of ["127.0.0.9", "127.0.0.10"]) {
        const mine = answers.filter((a) => a.startsWith(ip + ":")).map((a) => a.split(":")[1]);
        assertEquals(mine, [...Array(10).fill("unauthorized"), "rate_limited", "rate_limited"]);
      }
      // The victim, from its own address, with its token: in.
      const victim = await openRawPhone(gw.url, "127.0.0.1");
      victim.send(login("victim", token));
      const ok = await victim.next("login ok", T(3000));
      const err = victim.received.find((m) => m.order === "error");
      figure("lockout", { attackers: answers.length, victim: ok ? "login ok" : err?.code });
      assert(ok, `victim refused: ${JSON.stringify(err)}`);
      await victim.close();
    } finally {
      await gw.close();
    }
  },
);

Deno.test(
  "unlock flood: refused and rate-limited attempts become one audit row per uid, result and minute with a count",
  opts,
  async () => {
    const gw = await startTestGateway();
    const token = await gw.bind("p1", ROOM);
    const FLOOD = 1500;
    const phone = await openRawPhone(gw.url);
    let closed = false;
    try {
      phone.send(login("p1", token));
      assert(await phone.next("login ok", T(3000)));
      const unlock = {
        order: "unlock",
        uid: "p1",
        roomAddress: ROOM,
        community: "花苑",
        doorAddress: "M00010100",
      };
      const t0 = performance.now();
      for (let i = 0; i < FLOOD; i++) phone.send(unlock);
      // Error replies are capped at 20/s per connection (the rest only counted): wait until the
      // gateway has handled every attempt, by its counters.
      const deadline = Date.now() + T(10_000);
      const handled = () => {
        const codes = new Map<string, number>();
        for (const code of ["not_in_call", "rate_limited"]) {
          const n = gw.app.metrics.get("phone_errors_total", { code });
          if (n) codes.set(code, n);
        }
        return codes;
      };
      const total = () => [...handled().values()].reduce((a, b) => a + b, 0);
      while (total() < FLOOD && Date.now() < deadline) await sleep(50);
      const codes = handled();
      assertEquals(total(), FLOOD);
      await phone.close();
      await gw.close({ keepData: true });
      closed = true;
      const [cmd, ...pre] = denoCommand();
      const out = await new Deno.Command(cmd!, {
        args: [...pre, "run", ...RUN_FLAGS, MAIN, "calls", "--unlocks", "--limit", "10000"],
        env: { INTERCOM_DATA: gw.data },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const rows = new TextDecoder().decode(out.stdout).trim().split("\n").filter(Boolean).map((
        l,
      ) => JSON.parse(l) as { result: string; count: number });
      const counted = new Map<string, number>();
      for (const r of rows) counted.set(r.result, (counted.get(r.result) ?? 0) + r.count);
      figure("unlock flood", {
        attempts: FLOOD,
        ms: Math.round(performance.now() - t0),
        replies: Object.fromEntries(codes),
        auditRows: rows.length,
        counted: Object.fromEntries(counted),
      });
      // Every attempt is counted, in a handful of rows (two results, at most two minutes each).
      assertEquals(Object.fromEntries(counted), Object.fromEntries(codes));
      assert(rows.length <= 4, `${rows.length} audit rows for ${FLOOD} attempts`);
    } finally {
      if (!closed) {
        await phone.close();
        await gw.close();
      } else {
        await Deno.remove(gw.data, { recursive: true }).catch(() => {});
      }
    }
  },
);

Deno.test(
  "media takeover: a phone told 'answered elsewhere' cannot take the talker's media, whatever its transport",
  opts,
  async () => {
    const gw = await startTestGateway();
    const a = await openPhone(gw, "a", { answer: "talk", talkAfterS: 0.3, enableVideo: "ws" });
    const b = await openPhone(gw, "b", { answer: "callok", enableVideo: "none" });
    const door = await openDoor({ ringTimeoutS: 20 });
    const rogue = await openUdpPort({ hostname: "127.0.0.1", port: 0 });
    try {
      void door.start();
      await door.when("talk");
      await b.waitFor((e) => e.kind === "in" && e.order === "over", T(3000));
      const callA = a.messagesIn("call")[0] as unknown as { callId: string; mediaKey: string };
      const callB = b.messagesIn("call")[0] as unknown as { mediaKey: string };
      const media = { hostname: "127.0.0.1", port: gw.app.addresses.media.port };
      await sleep(T(300));
      const videoBefore = a.call!.media.videoPackets;
      // b names the talker's uid with the key it was given.
      const asA = (mediaKey: string) =>
        encodeMediaControl({ uid: "a", callId: callA.callId, mediaKey });
      rogue.send(asA(callB.mediaKey), media);
      const audio = audioPacket();
      for (let i = 0; i < 20; i++) rogue.send(audio, media);
      const toRogue = await received(rogue, T(1000));
      // a's own key replayed from elsewhere while a's WebSocket is live.
      rogue.send(asA(callA.mediaKey), media);
      const toRogueReplay = await received(rogue, T(800));
      const videoAfter = a.call!.media.videoPackets;
      const relay = gw.app.relay.totals.dropped;
      figure("media takeover", {
        toRogue,
        toRogueReplay,
        doorAudio: door.counters.audioReceived,
        talkerVideo: videoAfter - videoBefore,
        badKey: relay.bad_key,
        relatchRefused: relay.relatch_refused,
      });
      assertEquals([toRogue, toRogueReplay, door.counters.audioReceived], [0, 0, 0]);
      assert(videoAfter - videoBefore > 10, "the talker keeps the door's video");
      assert(callA.mediaKey !== callB.mediaKey, "one media key per phone");
      assert(relay.bad_key >= 1 && relay.relatch_refused >= 1, JSON.stringify(relay));
    } finally {
      rogue.close();
      await door.close();
      await a.close();
      await b.close();
      await gw.close();
    }
  },
);

Deno.test(
  "phone audio is paced: a talker at 10× the real-time rate reaches the door at the real-time rate",
  opts,
  async () => {
    await sleep(T(700)); // the previous door lingers on 127.0.0.2:8302
    const gw = await startTestGateway();
    const phone = await openPhone(gw, "p1", {
      answer: "talk",
      talkAfterS: 0.2,
      enableVideo: "none",
    });
    // The door's socket, watched: the timestamps of the audio the gateway sends it.
    const socket = await openUdpPort({ hostname: "127.0.0.2", port: 8302 });
    const stamps: number[] = [];
    const watched: DatagramPort = {
      get local() {
        return socket.local;
      },
      get sendErrors() {
        return socket.sendErrors;
      },
      get closed() {
        return socket.closed;
      },
      send: (d, to) => socket.send(d, to),
      release: (d) => socket.release(d),
      close: () => socket.close(),
      receive: async () => {
        const r = await socket.receive();
        const d = r[0];
        if (d.length >= 77 && d[OFFSET.OP] === OP.CALLDOWN) {
          stamps.push(new DataView(d.buffer, d.byteOffset).getUint32(OFFSET.TIMESTAMP, true));
        }
        return r;
      },
    };
    const door = new DoorSim({ socket: watched, ip: "127.0.0.2", ringTimeoutS: 20 });
    const talker = await openUdpPort({ hostname: "127.0.0.1", port: 0 });
    try {
      void door.start();
      await door.when("talk");
      const call = phone.messagesIn("call")[0] as unknown as { callId: string; mediaKey: string };
      const media = { hostname: "127.0.0.1", port: gw.app.addresses.media.port };
      talker.send(encodeMediaControl({ uid: "p1", ...call }), media);
      assert((await received(talker, T(300))) >= 1, "latched");
      // 1,250 packets a second for 2 s (a quarter of that under emulation: still 2.5× real time).
      const perMs = TIME_SCALE > 1 ? 0.3125 : 1.25;
      const packet = audioPacket();
      const start = performance.now();
      let sent = 0;
      while (performance.now() - start < 2000) {
        const due = Math.floor((performance.now() - start) * perMs);
        for (; sent < due; sent++) talker.send(packet, media);
        await sleep(4);
      }
      const ms = performance.now() - start;
      await sleep(T(300));
      const span = stamps.length ? stamps.at(-1)! - stamps[0]! : 0;
      const paced = await metric(gw.httpBase, 'media_dropped_total{reason="paced"}');
      figure("pacing", {
        sent,
        ms: Math.round(ms),
        toDoor: stamps.length,
        doorTsSpanMs: span,
        paced,
      });
      assert(stamps.length > 100, `the door heard ${stamps.length} packets`);
      // The gateway may still forward (paced) what it had queued during the wait after the burst.
      const window = ms + T(300);
      assert(
        stamps.length <= 16 + (125 * window) / 1000,
        `${stamps.length} packets in ${window} ms`,
      );
      assert(span <= window + 16 * 8, `door timestamps span ${span} ms in ${window} ms`);
      if (TIME_SCALE > 1) {
        // An emulated gateway may also lose datagrams in the socket buffer: not paced, not sent.
        assert(paced > 0 && paced <= sent - stamps.length, `paced ${paced} of ${sent}`);
      } else {
        assertEquals(paced, sent - stamps.length);
      }
    } finally {
      talker.close();
      await door.close();
      await phone.close();
      await gw.close();
    }
  },
);

Deno.test("shutdown: phones in a call are told over (gateway stopping)", opts, async () => {
  await sleep(T(700)); // the previous door lingers on 127.0.0.2:8302
  const gw = await startTestGateway();
  const phone = await openPhone(gw, "p1", { answer: "callok" });
  const door = await openDoor({ ringTimeoutS: 20 });
  try {
    void door.start();
    await door.when("answered");
    await gw.close();
    await phone.waitFor((e) => e.kind === "in" && e.order === "over", T(2000)).catch(() => {});
    const reasons = phone.messagesIn("over").map((m) =>
      (m as unknown as { reason: string }).reason
    );
    figure("shutdown", { reasons });
    assertEquals(reasons, ["gateway stopping"]);
  } finally {
    await door.close();
    await phone.close();
  }
});
