/**
 * Unlock on the door build that opens its lock only while talking and gives REMOTEOPENLOCK no
 * reply at all before CALLSTART (`sim door --unlock-needs-talk-silent`), end to end: the whole
 * gateway in-process, the door simulator on 127.0.0.2:8302, a phone simulator that only rings
 * (`call ok`, video over UDP) and presses unlock. Runs only inside the private network namespace
 * of `deno task test`.
 */

import { assert, assertEquals } from "./helpers/assert.ts";
import { startTestGateway, type TestGateway, TIME_SCALE } from "./helpers/gateway.ts";
import { inNetns } from "./helpers/netns.ts";
import { openDoor, openPhone, sleep } from "./helpers/sims.ts";
import type { PhoneSim } from "../src/sim/phone_sim.ts";
import type { DoorSim } from "../src/sim/door_sim.ts";
import type { EventOf } from "../src/events/types.ts";
import { openUdpPort } from "../src/net/udp.ts";
import { encodeMedia, OP } from "../src/protocol/mod.ts";
import { encodeMediaControl } from "../src/phone/messages.ts";

const opts = { ignore: !inNetns };
const T = (ms: number) => ms * TIME_SCALE;

function orders(p: PhoneSim): string[] {
  return p.events.filter((e) => e.kind === "in").map((e) => {
    const m = e.message as unknown as Record<string, unknown>;
    return `${m.order}${m.reason ? `(${m.reason})` : ""}${m.code ? `(${m.code})` : ""}`;
  });
}

/** The door's lock and talk events in order, e.g. `lock_ignored(needs_talk_silent) talk …`. */
function doorSaw(door: DoorSim): string[] {
  return door.events.flatMap((e) =>
    e.type === "lock_ignored"
      ? [`lock_ignored(${e.reason})`]
      : e.type === "talk" || e.type === "lock_opened"
      ? [e.type]
      : []
  );
}

async function closeAll(...xs: { close(): Promise<unknown> }[]): Promise<void> {
  for (const x of xs) await x.close().catch(() => {});
}

/** What one call looked like from the phone's media socket. */
interface CallMedia {
  readonly door: DoorSim;
  /** Door media packets received, by data type 1 (audio) or video. */
  readonly audio: number;
  readonly video: number;
}

/**
 * One call of a silent unlock-needs-talk door: the phone rings (`call ok`, no talk), receives the
 * door's media on its own UDP socket and sends audio from it the whole time, presses unlock,
 * waits for the answer, hangs up.
 */
async function ringAndUnlock(gw: TestGateway, phone: PhoneSim): Promise<CallMedia> {
  const since = phone.events.length;
  const door = await openDoor({ unlockNeedsTalk: "silent" });
  const sock = await openUdpPort({ hostname: "127.0.0.1", port: 0 });
  const media = { hostname: "127.0.0.1", port: gw.app.addresses.media.port };
  let audio = 0;
  let video = 0;
  let sending: ReturnType<typeof setInterval> | undefined;
  const receiving = (async () => {
    for (;;) {
      const r = await sock.receive().catch(() => undefined);
      if (!r) return;
      const data = r[0];
      if (data[0] === 0x7b) continue; // `enable_video ok`
      if (data[61] === 1) audio++;
      else video++;
    }
  })();
  try {
    const done = door.start();
    const got = await phone.waitFor("call", T(5000), since);
    const call = (got.kind === "in" ? got.message : {}) as { callId?: string; mediaKey?: string };
    sock.send(
      encodeMediaControl({ uid: "p1", callId: call.callId!, mediaKey: call.mediaKey! }),
      media,
    );
    // Audio from a phone that is not the talker must never reach the door.
    let frameNo = 0;
    sending = setInterval(() => {
      frameNo++;
      sock.send(
        encodeMedia({
          op: OP.CALLDOWN,
          caller: "M00010100",
          callerIp: "0.0.0.0",
          callee: "S00010108090",
          calleeIp: "0.0.0.0",
          timestamp: frameNo * 8,
          dataType: 1,
          frameNo,
          payload: new Uint8Array(64).fill(0xff),
        }),
        media,
      );
    }, 20);
    await phone.waitFor("call ok", T(5000), since);
    phone.unlock();
    await phone.waitFor((e) => e.kind === "in" && e.order.startsWith("unlock"), T(5000), since);
    // Let the door, now talking, send audio of its own before the call ends.
    await sleep(T(300));
    clearInterval(sending);
    phone.hangup();
    const summary = await done;
    assertEquals([summary.reason, summary.locksOpened], ["ended_by_gateway", 1]);
    assertEquals(summary.counters.audioReceived, 0, "phone audio reached the door");
    return { door, audio, video };
  } finally {
    clearInterval(sending);
    sock.close();
    await receiving;
    await door.close();
  }
}

Deno.test(
  "unlock while ringing on a door silent to REMOTEOPENLOCK before talk: CALLSTART, REMOTEOPENLOCK, unlock success; next call CALLSTART first",
  opts,
  async () => {
    const gw = await startTestGateway();
    const learned: EventOf<"door_quirk">[] = [];
    gw.app.events.subscribe((e) => {
      if (e.type === "door_quirk") learned.push(e);
    }, { name: "test", types: ["door_quirk"] });
    // Its media socket is the test's own (see ringAndUnlock).
    const phone = await openPhone(gw, "p1", { answer: "callok", enableVideo: "none" });
    try {
      // First call: the door ignores the unlock, the gateway talks to it and asks again.
      const first = await ringAndUnlock(gw, phone);
      assertEquals(doorSaw(first.door), [
        "lock_ignored(needs_talk_silent)",
        "talk",
        "lock_opened",
      ]);
      assertEquals(
        learned.map((e) => [e.address, e.ip, e.needsTalkForUnlock]),
        [["M00010100", "127.0.0.2", true]],
      );
      // The door registry keeps it (persisted, shown by `door list`).
      assertEquals(
        gw.app.live.doors().map((d) => [d.address, d.needsTalkForUnlock]),
        [["M00010100", true]],
      );

      // Second call from the same door: CALLSTART before the first REMOTEOPENLOCK.
      const second = await ringAndUnlock(gw, phone);
      assertEquals(doorSaw(second.door), ["talk", "lock_opened"]);
      assertEquals(learned.length, 1, "learned once");

      // The phone: both unlocks succeeded, it never became the talker nor heard the door.
      assertEquals(
        orders(phone).filter((o) =>
          o !== "heartbeat ok" && o !== "enable_video ok" && o !== "login ok"
        ),
        ["call", "unlock success", "over success", "call", "unlock success", "over success"],
      );
      // The phone watched the door but never heard it.
      for (const m of [first, second]) {
        assert(m.video > 10, `video ${m.video}`);
        assertEquals(m.audio, 0, "door audio reached a phone that did not talk");
      }
      const dropped = gw.app.relay.totals.dropped;
      assert(dropped.before_talk > 0, "the phone sent audio while ringing");
      assert(
        dropped.door_audio_before_talk > 0,
        "the door sent audio while talking for the unlock",
      );
      const audit = await gw.app.records.recentUnlocks(10);
      assertEquals(audit.map((a) => a.result), ["success", "success"]);
      const recs = await gw.app.records.recent(2);
      assert(recs.every((r) => r.talkAt === undefined), "a call recorded a talk");
    } finally {
      await closeAll(phone, gw);
    }
  },
);
