/**
 * Web Push end to end (README "Sleeping phones", phone-protocol.md "push subscribe"): a web
 * phone registers its subscription over the WebSocket and goes to sleep; a door calls the room;
 * the gateway answers the door at once and pushes an encrypted, VAPID-signed ring to a push
 * service on loopback ({@linkcode startPushService}: it verifies the JWT and decrypts with the
 * keys this test made, as a browser would); the phone wakes 2 s later, rings, talks and opens
 * the door. A subscription the push service answers 410 is deleted (and the room stops being
 * reachable); removing the binding removes its subscriptions. No webhook configured: Web Push
 * alone makes the room reachable. Runs only inside the private network namespace.
 */

import { assert, assertEquals } from "./helpers/assert.ts";
import { startTestGateway, type TestGateway, TIME_SCALE } from "./helpers/gateway.ts";
import { inNetns } from "./helpers/netns.ts";
import { openDoor, sleep } from "./helpers/sims.ts";
import { newSubscriber, type PushService, startPushService } from "./helpers/push_service.ts";
import { type PhoneScript, PhoneSim } from "../src/sim/phone_sim.ts";

const opts = { ignore: !inNetns, sanitizeOps: false, sanitizeResources: false };
const T = (ms: number) => ms * TIME_SCALE;
const UID = "359608060142756";
const ROOM = "Y00010108090";

async function until(what: string, ok: () => boolean | Promise<boolean>, ms: number) {
  const end = performance.now() + ms;
  while (!(await ok())) {
    if (performance.now() > end) throw new Error(`Cannot see ${what} within ${ms} ms`);
    await sleep(20);
  }
}

function phone(gw: TestGateway, token: string, script: PhoneScript = {}): PhoneSim {
  return new PhoneSim({
    url: gw.url,
    uid: UID,
    token,
    roomAddress: ROOM,
    community: "花苑",
    heartbeatMs: 1000,
    script,
  });
}

/** A web phone logs in, registers a push subscription of `push` as `id`, and goes to sleep. */
async function subscribeAndSleep(gw: TestGateway, push: PushService, token: string, id: string) {
  const sub = await newSubscriber();
  push.add(id, sub);
  const p = phone(gw, token);
  await p.start();
  const ok = await p.waitFor("login ok", T(5000));
  assertEquals(
    (ok as { message?: { vapidPublicKey?: string } }).message?.vapidPublicKey,
    gw.app.vapidPublicKey,
  );
  p.sendOrder("push subscribe", {
    endpoint: push.endpoint(id),
    p256dh: sub.p256dh,
    auth: sub.auth,
  });
  const reply = await p.waitFor("push ok", T(5000));
  assertEquals((reply as { message?: Record<string, unknown> }).message?.subscribed, true);
  await p.close();
  await until("the phone offline", () => !gw.app.hub.roomOnline("00010108090"), T(3000));
  return sub;
}

async function setup(wakeWindow = 20) {
  const gw = await startTestGateway({ pushAllowHttp: true, wakeWindow });
  // The push service takes only the gateway's own VAPID key.
  const push = startPushService({ vapidKey: () => gw.app.vapidPublicKey });
  const token = await gw.bind(UID, ROOM);
  return { push, gw, token };
}

Deno.test(
  "web push: a sleeping web phone is pushed, wakes 2 s later, rings, talks, opens the door",
  opts,
  async () => {
    const { push, gw, token } = await setup();
    await subscribeAndSleep(gw, push, token, "phone-1");
    const door = await openDoor();
    try {
      const t0 = performance.now();
      const summaryP = door.start();
      await until("the push", () => push.delivered.length > 0, T(5000));
      const took = push.delivered[0]!.at - t0;
      // deno-lint-ignore no-console
      console.log(`web push delivered ${took.toFixed(0)} ms after the door pressed call`);
      assertEquals(push.problems, []);
      const { message, headers, claims } = push.delivered[0]!;
      const callId = String(message.callId);
      assertEquals(
        [message.event, message.door, message.room, message.community, message.uid],
        ["ring", "M00010100", ROOM, "花苑", UID],
      );
      assert(Number(message.expiresAt) > Date.now() + 15_000, "the wake window");
      assert(Number(headers["ttl"]) > 15 && Number(headers["ttl"]) <= 20, `TTL ${headers["ttl"]}`);
      assertEquals(claims.sub, "mailto:admin@localhost");
      await until("CALLANSWER", () => door.events.some((e) => e.type === "answered"), T(3000));
      // The phone wakes 2 s later (the notification opened the app): rung as if it had been on.
      await sleep(2000);
      const woke = phone(gw, token, { answer: "talk", unlockAfterS: 0.3, hangupAfterS: 1 });
      await woke.start();
      try {
        await woke.waitFor("over success", T(8000));
        const summary = await summaryP;
        assertEquals([summary.reason, summary.answered, summary.talked, summary.locksOpened], [
          "ended_by_gateway",
          true,
          true,
          1,
        ]);
        const calls = woke.messagesIn("call");
        assertEquals([calls.length, (calls[0] as { callId?: string }).callId], [1, callId]);
        const rec = (await gw.app.records.recent(1))[0]!;
        assertEquals(rec.endReason, "phone_hung_up");
        // The woken phone answered and is connected, but its subscription took the ring, so it
        // gets `ring ended` too: the phone's other devices (same subscription list) withdraw
        // the ringing notification.
        await until("the ring-ended push", () => push.delivered.length > 1, T(5000));
        const end = push.delivered[1]!;
        assertEquals(push.problems, []);
        assertEquals(
          [end.id, end.message.event, end.message.callId, end.message.outcome, end.message.missed],
          ["phone-1", "ring ended", callId, "phone_hung_up", false],
        );
        assert(Number(end.headers["ttl"]) <= 60, `TTL ${end.headers["ttl"]}`);
        assertEquals(gw.app.metrics.get("web_push_sent_total", { event: "ring" }), 1);
        assertEquals(gw.app.metrics.get("web_push_sent_total", { event: "ring ended" }), 1);
      } finally {
        await woke.close();
      }
    } finally {
      await door.close();
      await gw.close();
      await push.close();
    }
  },
);

Deno.test(
  "web push: nobody wakes: after the wake window the door gets CALLEND and the phone `ring ended` (missed)",
  opts,
  async () => {
    const { push, gw, token } = await setup(3);
    await subscribeAndSleep(gw, push, token, "phone-1");
    const door = await openDoor();
    try {
      const t0 = performance.now();
      const summary = await door.start();
      assertEquals(summary.reason, "ended_by_gateway");
      await until("the ring-ended push", () => push.delivered.length > 1, T(5000));
      assertEquals(push.problems, []);
      const [ring, end] = push.delivered;
      assertEquals(ring!.message.event, "ring");
      const after = end!.at - t0;
      // deno-lint-ignore no-console
      console.log(`ring ended pushed ${after.toFixed(0)} ms after the door called (window 3 s)`);
      assert(after >= 2900, `after the wake window, not before (${after.toFixed(0)} ms)`);
      assertEquals(end!.message, {
        event: "ring ended",
        callId: ring!.message.callId,
        outcome: "no_phone_woke",
        missed: true,
        door: "M00010100",
        room: ROOM,
        community: "花苑",
        uid: UID,
        endedAt: end!.message.endedAt,
      });
      const rec = (await gw.app.records.recent(1))[0]!;
      assertEquals(rec.endReason, "no_phone_woke");
    } finally {
      await door.close();
      await gw.close();
      await push.close();
    }
  },
);

Deno.test(
  "web push: 410 deletes the subscription, and the room is no longer reachable",
  opts,
  async () => {
    const { push, gw, token } = await setup(3);
    await subscribeAndSleep(gw, push, token, "phone-1");
    push.gone("phone-1");
    const door = await openDoor();
    try {
      // Reachable by its subscription: the door is answered, the push answered 410.
      const first = door.start();
      await until(
        "the subscription deleted",
        async () => (await gw.app.pushSubscriptions.list()).length === 0,
        T(5000),
      );
      assertEquals(gw.app.metrics.get("web_push_gone_total", { event: "ring" }), 1);
      assertEquals((await first).reason, "ended_by_gateway");
      const rec = (await gw.app.records.recent(1))[0]!;
      assertEquals(rec.endReason, "no_phone_woke");
    } finally {
      await door.close();
    }
    // Nothing left to wake it: the door's name resolution goes unanswered, as before push.
    const again = await openDoor();
    try {
      assertEquals((await again.start()).reason, "ns_unanswered");
      assertEquals(push.attempts(), 1, "no `ring ended` to the deleted subscription");
    } finally {
      await again.close();
      await gw.close();
      await push.close();
    }
  },
);

Deno.test(
  "web push: removing the binding removes its subscriptions; no push, no NS answer",
  opts,
  async () => {
    const { push, gw, token } = await setup();
    await subscribeAndSleep(gw, push, token, "phone-1");
    assertEquals((await gw.app.pushSubscriptions.list()).map((s) => s.uid), [UID]);
    assertEquals(await gw.app.bindings.remove(UID), 1);
    assertEquals(await gw.app.pushSubscriptions.list(), []);
    // The push directory sees the change within its poll.
    await sleep(2500);
    const door = await openDoor();
    try {
      assertEquals((await door.start()).reason, "ns_unanswered");
      assertEquals(push.attempts(), 0);
    } finally {
      await door.close();
      await gw.close();
      await push.close();
    }
  },
);

Deno.test(
  "web push: hostile subscriptions are refused with bad_request, the session goes on",
  opts,
  async () => {
    const { push, gw, token } = await setup();
    // A second gateway, as deployed (https endpoints only), on another door port.
    const strict = await startTestGateway({ doorPort: 0 });
    const p = phone(gw, token);
    const strictToken = await strict.bind(UID, ROOM);
    const q = new PhoneSim({
      url: strict.url,
      uid: UID,
      token: strictToken,
      roomAddress: ROOM,
      community: "花苑",
      heartbeatMs: 1000,
    });
    try {
      await p.start();
      await p.waitFor("login ok", T(5000));
      const sub = await newSubscriber();
      const bad: Record<string, unknown>[] = [
        { endpoint: "javascript:alert(1)", p256dh: sub.p256dh, auth: sub.auth },
        { endpoint: push.endpoint("x"), p256dh: "B".repeat(87), auth: sub.auth },
        { endpoint: push.endpoint("x"), p256dh: sub.p256dh, auth: "short" },
        {
          endpoint: push.endpoint("x"),
          p256dh: sub.p256dh,
          auth: sub.auth,
          roomAddress: "Y99999999999",
        },
      ];
      for (const [i, extra] of bad.entries()) {
        p.sendOrder("push subscribe", extra);
        await until(
          `the error for ${JSON.stringify(extra)}`,
          () => p.messagesIn("error").length > i,
          T(3000),
        );
      }
      const errors = p.messagesIn("error") as unknown as Record<string, unknown>[];
      assertEquals(errors.map((e) => e.code), [
        "bad_request",
        "bad_request",
        "bad_request",
        "not_bound",
      ]);
      assert(String(errors[1]!.message).includes("P-256"), String(errors[1]!.message));
      // Without --push-allow-http: the loopback http endpoint is refused.
      await q.start();
      await q.waitFor("login ok", T(5000));
      q.sendOrder("push subscribe", {
        endpoint: push.endpoint("x"),
        p256dh: sub.p256dh,
        auth: sub.auth,
      });
      await q.waitFor("error", T(3000));
      const [e] = q.messagesIn("error") as unknown as Record<string, unknown>[];
      assert(String(e!.message).includes("https"), String(e!.message));
      assertEquals(await gw.app.pushSubscriptions.list(), []);
      assertEquals(await strict.app.pushSubscriptions.list(), []);
    } finally {
      await p.close();
      await q.close();
      await gw.close();
      await strict.close();
      await push.close();
    }
  },
);
