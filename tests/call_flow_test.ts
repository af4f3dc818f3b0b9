/**
 * The seed's six flows end to end over real sockets: the whole gateway in-process, the door
 * simulator on 127.0.0.2:8302 (multicast NS on 238.9.9.1), phone simulators over WebSocket and
 * UDP media. Runs only inside the private network namespace of `deno task test`.
 */

import { assert, assertEquals } from "./helpers/assert.ts";
import { startTestGateway, TIME_SCALE } from "./helpers/gateway.ts";
import { inNetns } from "./helpers/netns.ts";
import { NS_ROUNDS, openDoor, openPhone, sleep } from "./helpers/sims.ts";
import type { PhoneSim } from "../src/sim/phone_sim.ts";
import type { DoorSim } from "../src/sim/door_sim.ts";

const opts = { ignore: !inNetns };
const T = (ms: number) => ms * TIME_SCALE;

function orders(p: PhoneSim): string[] {
  return p.events.filter((e) => e.kind === "in").map((e) => {
    const m = e.message as unknown as Record<string, unknown>;
    return `${m.order}${m.reason ? `(${m.reason})` : ""}${m.code ? `(${m.code})` : ""}`;
  });
}

async function closeAll(...xs: { close(): Promise<unknown> }[]): Promise<void> {
  for (const x of xs) await x.close().catch(() => {});
}

Deno.test(
  "seed flows 一二三四六: NS, CALL, call ok, video, talk, two-way audio, unlock, phone hangs up",
  opts,
  async () => {
    const gw = await startTestGateway();
    const phone = await openPhone(gw, "359608060142756", {
      answer: "talk",
      talkAfterS: 0.5,
      unlockAfterS: 0.5,
      hangupAfterS: 1.5,
      enableVideo: "udp",
      sendAudio: true,
    });
    const door = await openDoor({ exactLengths: true, fps: 20 });
    try {
      const summary = await door.start();
      await phone.waitFor("over success", T(5000));
      // Door wire: the call completed as scripted, nothing the gateway sent had a wrong length.
      assertEquals([summary.reason, summary.completed, summary.answered, summary.talked], [
        "ended_by_gateway",
        true,
        true,
        true,
      ]);
      assertEquals(summary.locksOpened, 1);
      assertEquals(summary.counters.dropped, 0);
      assert(
        summary.counters.confirmsReceived >= 2,
        `confirms ${summary.counters.confirmsReceived}`,
      );
      assert(
        summary.counters.audioPlayed > 20,
        `door ${JSON.stringify(summary.counters)} phone ${JSON.stringify(phone.counters)}`,
      );
      assertEquals(summary.counters.audioOutOfOrder, 0);
      // Phone wire, in order.
      // (Under emulation a late CALLSTART reply may cost one `door_timeout` and a second tap.)
      const late = (o: string) => TIME_SCALE > 1 && o === "error(door_timeout)";
      assertEquals(
        orders(phone).filter((o) => o !== "heartbeat ok" && o !== "enable_video ok" && !late(o)),
        [
          "login ok",
          "call",
          "talk begin",
          "unlock success",
          "over success",
        ],
      );
      const call = phone.messagesIn("call")[0] as unknown as Record<string, string>;
      assertEquals(
        [call.doorAddress, call.roomAddress, call.uid, call.community],
        ["M00010100", "Y00010108090", "359608060142756", "花苑"],
      );
      assert(phone.counters.videoPackets > 10, `video ${phone.counters.videoPackets}`);
      assert(phone.counters.audioIn > 20, `door audio at phone ${phone.counters.audioIn}`);
      const rec = (await gw.app.records.recent(1))[0]!;
      assertEquals([rec.endReason, rec.answeredBy, rec.unlocks.length, rec.unlocks[0]?.result], [
        "phone_hung_up",
        "359608060142756",
        1,
        "success",
      ]);
      // The door inventory learned the door, its IP and its media header form from the call.
      const doors = gw.app.live.doors();
      assertEquals(
        doors.map((d) => [d.address, d.ip, d.mode, d.headerForm, typeof d.lastHeard]),
        [["M00010100", "127.0.0.2", "learned", 77, "number"]],
      );
      // The unlock audit has the successful attempt too: time, door, room, uid, IP, result.
      const audit = await gw.app.records.recentUnlocks(5);
      assertEquals(
        audit.map((u) => [u.uid, u.doorAddress, u.roomAddress, u.result, u.ip, u.callId]),
        [["359608060142756", "M00010100", "Y00010108090", "success", "127.0.0.1", rec.callId]],
      );
    } finally {
      await closeAll(door, phone, gw);
    }
  },
);

Deno.test(
  "seed flow 五: the door hangs up; phones get over and the door's CALLEND its reply",
  opts,
  async () => {
    const gw = await startTestGateway();
    const phone = await openPhone(gw, "p1", { answer: "talk", talkAfterS: 0.3 });
    const door = await openDoor({ hangupAfterS: 1.5 });
    try {
      const summary = await door.start();
      await phone.waitFor((e) => e.kind === "out" && e.order === "over success", T(3000));
      assertEquals([summary.reason, summary.callendReplied], ["hangup_after", true]);
      assert(orders(phone).includes("over(door hung up)"));
      await sleep(100);
      assertEquals(gw.app.manager.size, 0);
    } finally {
      await closeAll(door, phone, gw);
    }
  },
);

Deno.test("offline room: the NS ask is never answered and no CALL goes out", opts, async () => {
  const gw = await startTestGateway();
  const door = await openDoor();
  try {
    const summary = await door.start();
    assertEquals(summary.reason, "ns_unanswered");
    assertEquals(summary.counters.callSent, 0);
    assertEquals(summary.counters.nsSent, 6 * NS_ROUNDS);
  } finally {
    await closeAll(door, gw);
  }
});

Deno.test("no call ok within 3 s: the door gets LINEUSE", opts, async () => {
  const gw = await startTestGateway();
  const phone = await openPhone(gw, "p1", { answer: "ring" });
  const door = await openDoor();
  try {
    const summary = await door.start();
    assertEquals(summary.reason, "busy");
    const called = door.events.find((e) => e.type === "call_sent")!.t;
    const busy = door.events.find((e) => e.type === "busy")!.t;
    assert(busy - called >= 2900 && busy - called < T(4500), `LINEUSE after ${busy - called} ms`);
    assert(orders(phone).includes("over(ring timeout)"));
  } finally {
    await closeAll(door, phone, gw);
  }
});

Deno.test(
  "busy: a second door calling a ringing room gets LINEUSE; the phone is not disturbed",
  opts,
  async () => {
    const gw = await startTestGateway();
    const phone = await openPhone(gw, "p1", { answer: "callok" });
    const door1 = await openDoor({ ringTimeoutS: 10 });
    const door2 = await openDoor({ ip: "127.0.0.3", address: "M00010200", room: "S00010108090" });
    try {
      void door1.start();
      await door1.when("answered");
      const calls = phone.messagesIn("call").length;
      const s2 = await door2.start();
      assertEquals(s2.reason, "busy");
      assertEquals(phone.messagesIn("call").length, calls);
      assertEquals(door1.phase, "ringing");
    } finally {
      await closeAll(door1, door2, phone, gw);
    }
  },
);

Deno.test(
  "several phones ring; the first talk wins and the others get over (answered elsewhere)",
  opts,
  async () => {
    const gw = await startTestGateway();
    const a = await openPhone(gw, "phone-a", { answer: "talk", talkAfterS: 0.5, hangupAfterS: 1 });
    const b = await openPhone(gw, "phone-b", { answer: "talk", talkAfterS: 1.2 });
    const c = await openPhone(gw, "phone-c", { answer: "callok" });
    const door = await openDoor();
    try {
      const summary = await door.start();
      assertEquals(summary.reason, "ended_by_gateway");
      await a.waitFor("over success", T(3000));
      for (const p of [a, b, c]) assertEquals(p.messagesIn("call").length, 1);
      assert(orders(a).includes("talk begin"));
      assert(orders(b).includes("over(answered elsewhere)"), orders(b).join());
      assert(orders(c).includes("over(answered elsewhere)"));
      assert(!orders(b).includes("talk begin"));
    } finally {
      await closeAll(door, a, b, c, gw);
    }
  },
);

Deno.test("ring timeout and talk timeout end the call on both sides", opts, async () => {
  const gw = await startTestGateway({ ringTimeout: 1.5, talkTimeout: 1.5 });
  const ringer = await openPhone(gw, "p1", { answer: "callok" });
  let door: DoorSim = await openDoor();
  try {
    const s1 = await door.start();
    assertEquals(s1.reason, "ended_by_gateway");
    assert(orders(ringer).includes("over(ring timeout)"));
    await ringer.close();
    const talker = await openPhone(gw, "p2", { answer: "talk", talkAfterS: 0.2 });
    door = await openDoor();
    const s2 = await door.start();
    assertEquals([s2.reason, s2.talked], ["ended_by_gateway", true]);
    await talker.waitFor((e) => e.kind === "in" && e.order === "over", T(2000));
    assert(orders(talker).includes("over(talk timeout)"));
    await talker.close();
  } finally {
    await closeAll(door, ringer, gw);
  }
});

Deno.test(
  "door lost: a door that goes silent is detected within ~6 s and the phone gets over",
  opts,
  async () => {
    const gw = await startTestGateway();
    const phone = await openPhone(gw, "p1", { answer: "talk", talkAfterS: 0.2 });
    const door = await openDoor();
    try {
      void door.start();
      await door.when("talk");
      const off = Date.now();
      await door.powerOff();
      await phone.waitFor((e) => e.kind === "in" && e.order === "over", T(9000));
      const took = Date.now() - off;
      assert(orders(phone).includes("over(door lost)"));
      assert(took >= 5000 && took < T(8000), `detected after ${took} ms`);
    } finally {
      await closeAll(door, phone, gw);
    }
  },
);

Deno.test("the talking phone's connection drops: CALLEND to the door", opts, async () => {
  const gw = await startTestGateway();
  const phone = await openPhone(gw, "p1", { answer: "talk", talkAfterS: 0.2 });
  const door = await openDoor();
  try {
    void door.start();
    await door.when("talk");
    await phone.close();
    const summary = await door.done;
    assertEquals(summary.reason, "ended_by_gateway");
  } finally {
    await closeAll(door, phone, gw);
  }
});

Deno.test(
  "media over the WebSocket transport: video to the phone, audio to the door",
  opts,
  async () => {
    const gw = await startTestGateway();
    const phone = await openPhone(gw, "p1", {
      answer: "talk",
      talkAfterS: 0.5,
      hangupAfterS: 1.5,
      enableVideo: "ws",
      sendAudio: true,
    });
    const door = await openDoor({ payloadOffset: 86, codec: "alaw", flag04: true });
    try {
      const summary = await door.start();
      assertEquals(summary.reason, "ended_by_gateway");
      assert(phone.counters.videoPackets > 5, `video ${phone.counters.videoPackets}`);
      assert(summary.counters.audioPlayed > 20, `door played ${summary.counters.audioPlayed}`);
      assertEquals(summary.counters.audioOutOfOrder, 0);
    } finally {
      await closeAll(door, phone, gw);
    }
  },
);
