/**
 * Do-not-disturb end to end without a browser (the order the web phone sends): the whole gateway
 * in-process, the door simulator, two phone simulators of one room. A phone in DND is not rung;
 * a room whose phones all are is not offered to the door (its NS goes unanswered, as when
 * offline); `call` names the door's audio law. Runs only inside the test namespace.
 */

import { assert, assertEquals } from "./helpers/assert.ts";
import { startTestGateway, TIME_SCALE } from "./helpers/gateway.ts";
import { inNetns } from "./helpers/netns.ts";
import { openDoor, openPhone, sleep } from "./helpers/sims.ts";
import type { PhoneSim } from "../src/sim/phone_sim.ts";

const opts = { ignore: !inNetns };
const T = (ms: number) => ms * TIME_SCALE;

async function dnd(phone: PhoneSim, until: number): Promise<Record<string, unknown>> {
  const since = phone.events.length;
  phone.sendOrder("dnd", { until });
  const e = await phone.waitFor("dnd ok", T(3000), since);
  return e.kind === "in" ? e.message as unknown as Record<string, unknown> : {};
}

Deno.test(
  "dnd e2e: the phone in do-not-disturb is not rung, the other is; all in DND: NS unanswered",
  opts,
  async () => {
    const gw = await startTestGateway();
    const a = await openPhone(gw, "dnd-a", { answer: "callok", enableVideo: "none" });
    const b = await openPhone(gw, "dnd-b", { answer: "callok", enableVideo: "none" });
    try {
      const until = Date.now() + 60_000;
      const ok = await dnd(a, until);
      assertEquals([ok.until, ok.roomAddress, ok.uid], [until, "Y00010108090", "dnd-a"]);
      assertEquals(gw.app.hub.online("00010108090"), ["dnd-b"]);

      let door = await openDoor({ fps: 10 });
      void door.start();
      const call = await b.waitFor("call", T(5000));
      const law = call.kind === "in"
        ? (call.message as unknown as Record<string, unknown>).audioLaw
        : 0;
      assertEquals(law, "ulaw", "call names the door's audio law");
      await sleep(T(300));
      assertEquals(a.messagesIn("call").length, 0, "the phone in DND was not rung");
      b.sendOrder("over");
      assertEquals((await door.done).reason, "ended_by_gateway");

      await dnd(b, Date.now() + 60_000);
      assertEquals(gw.app.hub.online("00010108090"), []);
      door = await openDoor({ fps: 10 });
      const summary = await door.start();
      assertEquals(summary.reason, "ns_unanswered");
      assert(!a.messagesIn("call").length);

      // Off again: the room is offered and rings.
      await dnd(a, 0);
      door = await openDoor({ fps: 10 });
      void door.start();
      await a.waitFor("call", T(5000));
      await door.close();
    } finally {
      for (const x of [a, b]) await x.close().catch(() => {});
      await gw.close();
    }
  },
);
