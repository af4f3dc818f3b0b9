/**
 * The door side end to end over real UDP, inside the test namespace: the gateway's
 * {@linkcode DoorTransport} on 0.0.0.0:8302 (joined to 238.9.9.1 on 127.0.0.1) with a tiny inline
 * call layer, against the door simulator on 127.0.0.2:8302.
 *
 * Real time; margins are generous for a loaded two-core machine.
 *
 * @module
 */

import { TIME_SCALE } from "./helpers/gateway.ts";
import { assert, assertEquals } from "./helpers/assert.ts";
import { inNetns } from "./helpers/netns.ts";
import { systemClock } from "../src/clock.ts";
import type { DoorEvent } from "../src/call/ports.ts";
import { DoorTransport } from "../src/door/transport.ts";
import { nullLogger } from "../src/log.ts";
import { Metrics } from "../src/metrics.ts";
import type { DatagramPort, Endpoint } from "../src/net/port.ts";
import { openUdpPort } from "../src/net/udp.ts";
import {
  type CallParties,
  decodePacket,
  encodeCall,
  encodeMedia,
  MSG_TYPE,
  OP,
  PacketDecodeError,
} from "../src/protocol/mod.ts";
import { DoorSim, type DoorSimOptions } from "../src/sim/door_sim.ts";
import { doorSimCommand } from "../src/sim/door_cli.ts";
import { NS_ROUNDS } from "./helpers/sims.ts";

const GW_IP = "127.0.0.1";
const DOOR_IP = "127.0.0.2";
const GROUP = "238.9.9.1";
const ONLINE_ROOM = "00010108090";

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitUntil(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** A short summary of one door media datagram (the bytes are only valid during `onMedia`). */
interface MediaSeen {
  readonly at: number;
  readonly length: number;
  readonly dataType: number;
  readonly frameNo: number;
  readonly packet: number;
  readonly totalPackets: number;
}

/** The gateway's door transport with a tiny test call layer. */
class TestGateway {
  readonly metrics = new Metrics();
  readonly events: DoorEvent[] = [];
  readonly media: MediaSeen[] = [];
  readonly answers: Uint8Array[] = [];
  transport!: DoorTransport;
  parties: CallParties | undefined;
  door: Endpoint | undefined;
  port: DatagramPort | undefined;
  lost = 0;
  lostAt = 0;
  #stopKeepAlive: (() => void) | undefined;
  #timers = new Set<ReturnType<typeof setTimeout>>();

  constructor(
    readonly online: Set<string>,
    /** Delay before the layer answers a CALL (lets the door's CALL copies arrive). */
    readonly answerAfterMs = 0,
  ) {}

  static async start(online: string[], answerAfterMs = 0, lostAfterMs?: number) {
    const gw = new TestGateway(new Set(online), answerAfterMs);
    const port = await openUdpPort({
      hostname: "0.0.0.0",
      port: 8302,
      multicast: { group: GROUP, interface: GW_IP },
    });
    // Keep what the transport sends: the CALLANSWERs the door must get again for its copies.
    const send = port.send.bind(port);
    port.send = (bytes, to) => {
      if (bytes.length === 62 && bytes[8] === OP.CALLANSWER) gw.answers.push(bytes.slice());
      send(bytes, to);
    };
    gw.port = port;
    gw.transport = new DoorTransport({
      port,
      clock: systemClock,
      logger: nullLogger,
      metrics: gw.metrics,
      isOnline: (room) => gw.online.has(room),
      localIpFor: () => GW_IP,
      onEvent: (e) => gw.#onEvent(e),
      onMedia: (data) => gw.#onMedia(data),
      ...(lostAfterMs !== undefined ? { lostAfterMs } : {}),
    });
    gw.transport.listen();
    return gw;
  }

  get calls(): number {
    return this.events.filter((e) => e.type === "call").length;
  }

  #onEvent(e: DoorEvent): void {
    this.events.push(e);
    if (e.type === "call") {
      const call = e.call;
      const answer = () => {
        this.parties = call.parties;
        this.door = call.door;
        this.transport.answer(call, "CALLANSWER");
        this.#stopKeepAlive = this.transport.keepAlive(call, () => {
          this.lost++;
          this.lostAt = Date.now();
        });
      };
      if (this.answerAfterMs <= 0) answer();
      else {
        const id = setTimeout(() => {
          this.#timers.delete(id);
          answer();
        }, this.answerAfterMs);
        this.#timers.add(id);
      }
    } else {
      // The door hung up: acknowledge, stop the keep-alive.
      this.transport.confirmHangup(e.hangup);
      this.#stopKeepAlive?.();
    }
  }

  #onMedia(data: Uint8Array): void {
    const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
    this.media.push({
      at: Date.now(),
      length: data.length,
      dataType: v.getUint16(61, true),
      frameNo: v.getUint16(63, true),
      packet: v.getUint16(71, true),
      totalPackets: v.getUint16(69, true),
    });
  }

  /** Our ASK to the door of the call (100 ms × 6). */
  ask(op: typeof OP.CALLSTART | typeof OP.REMOTEOPENLOCK | typeof OP.CALLEND): Promise<boolean> {
    if (op === OP.CALLEND) this.#stopKeepAlive?.();
    return this.transport.ask(op, this.parties!, this.door!);
  }

  async close(): Promise<void> {
    for (const id of this.#timers) clearTimeout(id);
    this.#stopKeepAlive?.();
    await this.transport.close();
  }
}

async function openDoorSim(options: Partial<DoorSimOptions> = {}): Promise<DoorSim> {
  const socket = await openUdpPort({ hostname: DOOR_IP, port: 8302 });
  return new DoorSim({ socket, ip: DOOR_IP, nsRounds: NS_ROUNDS, ...options });
}

Deno.test({
  name: "door e2e: NS is answered only for online rooms; an offline room's door gives up, no CALL",
  ignore: !inNetns,
  fn: async () => {
    const gw = await TestGateway.start([ONLINE_ROOM]);
    let offline: DoorSim | undefined;
    let online: DoorSim | undefined;
    try {
      offline = await openDoorSim({ room: "0810" });
      const s = await offline.start();
      assertEquals([s.reason, s.counters.nsSent, s.counters.callSent], [
        "ns_unanswered",
        6 * NS_ROUNDS,
        0,
      ]);
      assertEquals(gw.metrics.get("door_ns_ignored_total"), 6 * NS_ROUNDS);
      assertEquals(gw.calls, 0);

      online = await openDoorSim({ room: "0809" });
      void online.start();
      const resolved = await online.when("ns_resolved");
      assertEquals(resolved.ip, GW_IP);
      await online.when("answered");
      assertEquals(online.counters.nsSent, 1);
      const end = await online.hangUp();
      assertEquals([end.reason, end.callendReplied], ["hung_up", true]);
      assertEquals(gw.metrics.get("door_ns_answered_total"), 1);
      assertEquals(gw.calls, 1);
    } finally {
      await offline?.close();
      await online?.close();
      await gw.close();
    }
  },
});

Deno.test({
  name:
    "door e2e: a complete ring: NS → CALL ×3 → CALLANSWER → video → keep-alive → talk → CALLEND",
  ignore: !inNetns,
  fn: async () => {
    // The layer answers only after the door's third CALL copy (sent at 0, 600, 1200 ms).
    const gw = await TestGateway.start([ONLINE_ROOM], 1400);
    let door: DoorSim | undefined;
    let probe: DatagramPort | undefined;
    try {
      door = await openDoorSim({ room: "0809", fps: 15 });
      const done = door.start();
      await door.when("answered");
      assertEquals(door.counters.callSent, 3);
      assertEquals(gw.calls, 1, "CALL copies make no second event");
      assertEquals(gw.metrics.get("door_ask_duplicates_total"), 2);
      // A later copy of the CALL (from the door's IP) gets the very same CALLANSWER.
      probe = await openUdpPort({ hostname: DOOR_IP, port: 0 });
      const call = encodeCall({
        type: MSG_TYPE.ASK,
        op: OP.CALL,
        ...gw.parties!,
        multicast: 0,
        groupIp: "0.0.0.0",
      });
      probe.send(call, { hostname: GW_IP, port: 8302 });
      const [again] = await probe.receive();
      assertEquals(again.toHex(), gw.answers[0]!.toHex());
      assertEquals(gw.calls, 1);
      assertEquals(gw.metrics.get("door_ask_duplicates_total"), 3);

      // Ringing: video at about 15 fps, and the gateway's keep-alive answered.
      await sleep(1500 * TIME_SCALE);
      const video = gw.media.filter((m) => m.dataType === 2 || m.dataType === 3);
      const frames = [...new Set(video.map((m) => m.frameNo))];
      // 15 fps; under emulation (TIME_SCALE > 1) encoding the test card is ~30x slower.
      const want = TIME_SCALE > 1 ? 1 : 12;
      assert(frames.length >= want, `video frames in 1.5 s: ${frames.length}`);
      assertEquals(video[0]!.dataType, 2, "I-frame first");
      assertEquals(video[0]!.packet, 1);
      assert(video.every((m) => m.length <= 1277 && m.packet <= m.totalPackets));
      assert(video.some((m) => m.length === 1277), "full 1200-byte chunks");
      assert(frames.every((f, i) => i === 0 || f > frames[i - 1]!), "frame numbers increase");
      assert(door.counters.confirmsReceived >= 2, `confirms ${door.counters.confirmsReceived}`);
      assertEquals(door.phase, "ringing");

      // Talk: the door replies, then sends audio; it plays ours.
      assert(await gw.ask(OP.CALLSTART), "CALLSTART answered");
      const talk = await door.when("talk");
      assertEquals(talk.mediaIp, GW_IP);
      for (let i = 0; i < 50; i++) {
        gw.port!.send(
          encodeMedia({
            op: 8,
            ...gw.parties!,
            timestamp: 1000 + 8 * i,
            dataType: 1,
            frameNo: i + 1,
            payload: new Uint8Array(64).fill(0xff),
          }),
          gw.door!,
        );
        if (i % 10 === 9) await sleep(10);
      }
      await sleep(500);
      const audio = gw.media.filter((m) => m.dataType === 1);
      assert(audio.length >= 30, `door audio in 0.5 s: ${audio.length}`);
      assert(audio.every((m) => m.length === 141));
      assert(door.counters.audioPlayed >= 45, `door played ${door.counters.audioPlayed}`);
      assertEquals(door.counters.audioOutOfOrder, 0);

      assert(await gw.ask(OP.REMOTEOPENLOCK), "unlock answered");
      await door.when("lock_opened");
      assert(await gw.ask(OP.CALLEND), "CALLEND answered");
      const summary = await done;
      assertEquals(
        [summary.reason, summary.completed, summary.talked, summary.locksOpened],
        ["ended_by_gateway", true, true, 1],
      );
      const drops = door.events.filter((e) => e.type === "dropped");
      assertEquals(summary.counters.dropped, 0, JSON.stringify(drops));
      assertEquals(gw.lost, 0);
    } finally {
      probe?.close();
      await door?.close();
      await gw.close();
    }
  },
});

Deno.test({
  name:
    "door e2e: the gateway's ASK to a door that never replies: 6 sends 100 ms apart, then false",
  ignore: !inNetns,
  fn: async () => {
    const gw = await TestGateway.start([ONLINE_ROOM]);
    const silent = await openUdpPort({ hostname: "127.0.0.3", port: 8302 });
    const arrivals: number[] = [];
    const reader = (async () => {
      try {
        for (;;) {
          const [data] = await silent.receive();
          const p = decodePacket(data);
          if (
            !(p instanceof PacketDecodeError) && p.kind === "call" && p.op === OP.REMOTEOPENLOCK
          ) {
            arrivals.push(Date.now());
          }
        }
      } catch {
        // closed
      }
    })();
    try {
      const t0 = Date.now();
      const ok = await gw.transport.ask(
        OP.REMOTEOPENLOCK,
        { caller: "M00010300", callerIp: "127.0.0.3", callee: "S00010108090", calleeIp: GW_IP },
        { hostname: "127.0.0.3", port: 8302 },
      );
      const elapsed = Date.now() - t0;
      assertEquals(ok, false);
      await sleep(200);
      assertEquals(arrivals.length, 6);
      assert(elapsed >= 550 && elapsed < 3000, `gave up after ${elapsed} ms`);
      const span = arrivals.at(-1)! - arrivals[0]!;
      assert(span >= 400 && span < 2500, `6 sends over ${span} ms`);
      assertEquals(gw.transport.pendingAsks, 0);
    } finally {
      silent.close();
      await reader;
      await gw.close();
    }
  },
});

Deno.test({
  name: "door e2e: a 2.4 s-window door stays 30 s in the call on the gateway's keep-alive",
  ignore: !inNetns,
  fn: async () => {
    const gw = await TestGateway.start([ONLINE_ROOM]);
    let door: DoorSim | undefined;
    try {
      door = await openDoorSim({
        keepaliveWindowMs: 2400,
        ringTimeoutS: 60,
        hangupAfterS: 30,
        fps: 10,
      });
      const summary = await door.start();
      assertEquals(
        [summary.reason, summary.completed, summary.callendReplied],
        ["hangup_after", true, true],
      );
      assert(door.events.every((e) => e.type !== "hangup_sent" || e.reason === "hangup_after"));
      const confirms = summary.counters.confirmsReceived;
      assert(confirms >= 50 && confirms <= 62, `confirms in 30 s: ${confirms}`);
      assertEquals(gw.lost, 0);
      assertEquals(gw.events.map((e) => e.type), ["call", "hangup"]);
    } finally {
      await door?.close();
      await gw.close();
    }
  },
});

Deno.test({
  name: "door e2e: the gateway notices a door that went silent (keep-alive lost)",
  ignore: !inNetns,
  fn: async () => {
    const gw = await TestGateway.start([ONLINE_ROOM], 0, 3000);
    let door: DoorSim | undefined;
    try {
      door = await openDoorSim();
      void door.start();
      await door.when("answered");
      await sleep(700);
      assert(door.counters.confirmsReceived >= 1);
      const off = Date.now();
      const summary = await door.powerOff();
      assertEquals(summary.reason, "power_off");
      await waitUntil(() => gw.lost > 0, 8000, "the keep-alive to notice");
      const after = gw.lostAt - off;
      assert(after >= 2000 && after < 6000, `lost ${after} ms after the door went silent`);
      assertEquals(gw.lost, 1);
      assertEquals(gw.transport.keepAlives, 0);
    } finally {
      await door?.close();
      await gw.close();
    }
  },
});

Deno.test({
  name:
    "door e2e: `sim door` completes a scripted call (exit 0) and fails for an offline room (exit 1)",
  ignore: !inNetns,
  fn: async () => {
    const gw = await TestGateway.start([ONLINE_ROOM]);
    try {
      const lines: string[] = [];
      const io = { out: (l: string) => lines.push(l), err: (l: string) => lines.push(l) };
      const code = await doorSimCommand(
        ["--ip", DOOR_IP, "--room", "0809", "--hangup-after", "1", "--fps", "10"],
        io,
      );
      const text = lines.join("\n");
      assertEquals(code, 0, text);
      for (
        const want of [
          "who has S00010108090?",
          "→ 127.0.0.1 answered",
          "answered, ringing (video 10 fps)",
          "first CALLCONFIRM",
          "hung up: scripted hang-up",
          "call completed",
        ]
      ) {
        assert(text.includes(want), `missing "${want}" in:\n${text}`);
      }

      lines.length = 0;
      const offline = await doorSimCommand(["--ip", DOOR_IP, "--room", "0810", "--json"], io);
      assertEquals(offline, 1);
      const records = lines.map((l) => JSON.parse(l) as { type: string; reason?: string });
      assertEquals(records.filter((r) => r.type === "ns_sent").length, 6);
      assertEquals(records.at(-1)!.type, "summary");
      assertEquals(records.at(-1)!.reason, "ns_unanswered");
    } finally {
      await gw.close();
    }
  },
});
