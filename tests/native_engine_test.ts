/**
 * The gateway with `--media-engine native` (native/media_engine.c): the seed's call end to end,
 * door video to the phone and two-way audio through the engine's thread, signalling through the
 * gateway as with Deno's sockets. Runs inside the private network namespace of `deno task test`,
 * on each architecture's library (the aarch64 one under qemu-user).
 */

import { assert, assertEquals } from "./helpers/assert.ts";
import { startTestGateway, TIME_SCALE } from "./helpers/gateway.ts";
import { inNetns } from "./helpers/netns.ts";
import { openDoor, openPhone } from "./helpers/sims.ts";

const opts = { ignore: !inNetns };
// The engine's library stays loaded for the process once opened (as in the gateway).
const loads = { ...opts, sanitizeResources: false };
const T = (ms: number) => ms * TIME_SCALE;
const LIB = new URL("../dist/native/", import.meta.url).pathname;

function metric(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  return m ? Number(m[1]) : NaN;
}

Deno.test(
  "native media engine: a whole call, its media forwarded by the engine's thread",
  loads,
  async () => {
    const gw = await startTestGateway({ mediaEngine: "native", mediaEngineLib: LIB });
    const phone = await openPhone(gw, "359608060142756", {
      answer: "talk",
      talkAfterS: 0.5,
      unlockAfterS: 0.5,
      hangupAfterS: 2,
      enableVideo: "udp",
      sendAudio: true,
    });
    const door = await openDoor({ exactLengths: true, fps: 20 });
    try {
      const summary = await door.start();
      await phone.waitFor("over success", T(6000));
      assertEquals([summary.reason, summary.completed, summary.talked], [
        "ended_by_gateway",
        true,
        true,
      ]);
      assertEquals(summary.locksOpened, 1);
      assertEquals(summary.counters.dropped, 0);
      assertEquals(summary.counters.audioOutOfOrder, 0);
      assert(
        summary.counters.audioPlayed > 20,
        `door ${JSON.stringify(summary.counters)} phone ${JSON.stringify(phone.counters)}`,
      );
      assert(phone.counters.videoPackets > 10, `video ${phone.counters.videoPackets}`);
      assert(phone.counters.audioIn > 20, `door audio at phone ${phone.counters.audioIn}`);
      // The relay's totals include what the engine forwarded; most datagrams never reached JS.
      const t = gw.app.relay.totals;
      assert(t.toPhones >= phone.counters.videoPackets, `toPhones ${t.toPhones}`);
      assert(t.toDoor >= summary.counters.audioPlayed, `toDoor ${t.toDoor}`);
      const text = gw.app.metrics.render();
      const received = metric(text, "media_engine_received_total");
      const up = metric(text, "media_engine_passed_up_total");
      assert(received > 100 && up < received / 2, `received ${received}, passed up ${up}`);
      const rec = (await gw.app.records.recent(1))[0]!;
      assertEquals([rec.endReason, rec.unlocks[0]?.result], ["phone_hung_up", "success"]);
      assertEquals(gw.app.live.doors().map((d) => d.headerForm), [77]);
    } finally {
      for (const x of [door, phone, gw]) await x.close().catch(() => {});
    }
  },
);

Deno.test(
  "native media engine: not with --cluster, and a missing library says so",
  opts,
  async () => {
    const { parseConfig } = await import("../src/config.ts");
    let err: unknown;
    try {
      parseConfig([
        "--media-engine",
        "native",
        "--cluster",
        "nats://127.0.0.1:4222",
        "--gateway-id",
        "a",
      ], {});
    } catch (e) {
      err = e;
    }
    assert(String(err).includes("Cannot use --media-engine native with --cluster"), String(err));
    err = undefined;
    try {
      await startTestGateway({ mediaEngine: "native", mediaEngineLib: "/nonexistent" });
    } catch (e) {
      err = e;
    }
    assert(String(err).includes("Cannot start the native media engine"), String(err));
  },
);
