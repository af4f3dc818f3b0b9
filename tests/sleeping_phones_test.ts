/**
 * Sleeping phones end to end (README "Sleeping phones"): a room whose only phone is bound but not
 * connected, the push webhook configured. The door's NS is answered, its CALL answered at once,
 * the webhook gets a signed `ring`; a phone that connects within the wake window is rung and
 * takes the call; nobody waking ends the call `no_phone_woke` with a `ring ended`; a failing
 * webhook never touches the call. Runs only inside the private network namespace.
 */

import { assert, assertEquals } from "./helpers/assert.ts";
import { startTestGateway, TIME_SCALE } from "./helpers/gateway.ts";
import { inNetns } from "./helpers/netns.ts";
import { openDoor, openPhone, sleep } from "./helpers/sims.ts";
import { signWebhook } from "../src/push/webhook.ts";

const opts = { ignore: !inNetns, sanitizeOps: false, sanitizeResources: false };
const T = (ms: number) => ms * TIME_SCALE;
const SECRET = "sleeping-phones-test-secret";
const UID = "359608060142756";

/** A push service on loopback: checks the signature and the timestamp of every POST. */
function pushService(status = 204) {
  const got: { body: Record<string, unknown>; at: number }[] = [];
  const bad: string[] = [];
  let attempts = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    attempts++;
    const raw = await req.text();
    const ts = req.headers.get("x-intercom-timestamp") ?? "";
    if (
      req.headers.get("x-intercom-signature") !== `sha256=${await signWebhook(SECRET, ts, raw)}`
    ) {
      bad.push("signature");
    }
    if (Math.abs(Number(ts) - Date.now() / 1000) > 30) bad.push(`timestamp ${ts}`);
    if (status < 300) got.push({ body: JSON.parse(raw), at: performance.now() });
    return new Response(null, { status });
  });
  return {
    got,
    bad,
    attempts: () => attempts,
    url: `http://127.0.0.1:${server.addr.port}/wake`,
    close: () => server.shutdown(),
  };
}

async function until(what: string, ok: () => boolean, ms: number): Promise<void> {
  const end = performance.now() + ms;
  while (!ok()) {
    if (performance.now() > end) throw new Error(`Cannot see ${what} within ${ms} ms`);
    await sleep(20);
  }
}

Deno.test(
  "sleeping phone: NS answered, CALLANSWER at once, ring pushed; it wakes, talks, opens",
  opts,
  async () => {
    const push = pushService();
    const gw = await startTestGateway({
      pushWebhook: push.url,
      pushWebhookSecret: SECRET,
      wakeWindow: 20,
    });
    await gw.bind(UID, "Y00010108090");
    // Bound after the start: the push directory sees it within its 2 s poll.
    await sleep(2500);
    const door = await openDoor();
    try {
      const t0 = performance.now();
      const summaryP = door.start();
      await until("the ring webhook", () => push.got.length > 0, T(5000));
      const ring = push.got[0]!;
      assert(ring.at - t0 < T(2000), `ring after ${ring.at - t0} ms`);
      assertEquals(push.bad, []);
      assertEquals(ring.body.event, "ring");
      assertEquals([
        ring.body.doorAddress,
        ring.body.roomAddress,
        ring.body.community,
        ring.body.uids,
      ], [
        "M00010100",
        "Y00010108090",
        "花苑",
        [UID],
      ]);
      assert(Number(ring.body.expiresAt) > Date.now() + 15_000, "the wake window");
      await until("CALLANSWER", () => door.events.some((e) => e.type === "answered"), T(3000));
      // The phone wakes 2 s later: it is rung as if it had been online, talks and opens.
      await sleep(2000);
      const phone = await openPhone(gw, UID, {
        answer: "talk",
        unlockAfterS: 0.3,
        hangupAfterS: 1,
      });
      try {
        await phone.waitFor("over success", T(8000));
        const summary = await summaryP;
        assertEquals([summary.reason, summary.answered, summary.talked, summary.locksOpened], [
          "ended_by_gateway",
          true,
          true,
          1,
        ]);
        assertEquals(phone.messagesIn("call").length, 1);
        const rec = (await gw.app.records.recent(1))[0]!;
        assertEquals(rec.endReason, "phone_hung_up");
        await until("ring ended", () => push.got.length === 2, T(3000));
        assertEquals(push.got[1]!.body.event, "ring ended");
        assertEquals(push.got[1]!.body.outcome, "phone_hung_up");
      } finally {
        await phone.close();
      }
    } finally {
      await door.close();
      await gw.close();
      await push.close();
    }
  },
);

Deno.test(
  "sleeping phone: nobody wakes: CALLEND after the window, missed no_phone_woke, ring ended",
  opts,
  async () => {
    const push = pushService();
    const data = await Deno.makeTempDir({ prefix: "gw-sleep-" });
    // The binding exists before the gateway starts (loaded at start).
    {
      const gw0 = await startTestGateway({ data });
      await gw0.bind(UID, "Y00010108090");
      await gw0.close({ keepData: true });
    }
    const gw = await startTestGateway({
      data,
      pushWebhook: push.url,
      pushWebhookSecret: SECRET,
      wakeWindow: 3,
    });
    const door = await openDoor();
    try {
      const t0 = performance.now();
      const summary = await door.start();
      const took = performance.now() - t0;
      assertEquals([summary.reason, summary.answered], ["ended_by_gateway", true]);
      assert(took >= 3000 && took < T(3000) + 4000, `ended after ${took} ms`);
      const rec = (await gw.app.records.recent(1))[0]!;
      assertEquals([rec.endReason, rec.talkAt], ["no_phone_woke", undefined]);
      await until("ring ended", () => push.got.length === 2, T(3000));
      assertEquals(push.got.map((g) => g.body.event), ["ring", "ring ended"]);
      assertEquals(push.got[1]!.body.outcome, "no_phone_woke");
      assertEquals(push.bad, []);
    } finally {
      await door.close();
      await gw.close();
      await push.close();
    }
  },
);

Deno.test(
  "sleeping phone: a failing webhook (500s) is retried, given up, the call unaffected",
  opts,
  async () => {
    const push = pushService(500);
    const data = await Deno.makeTempDir({ prefix: "gw-sleep-" });
    {
      const gw0 = await startTestGateway({ data });
      await gw0.bind(UID, "Y00010108090");
      await gw0.close({ keepData: true });
    }
    const gw = await startTestGateway({
      data,
      pushWebhook: push.url,
      pushWebhookSecret: SECRET,
      wakeWindow: 6,
    });
    const door = await openDoor();
    try {
      const summaryP = door.start();
      await until("CALLANSWER", () => door.events.some((e) => e.type === "answered"), T(3000));
      await until("the retries", () => push.attempts() >= 4, T(6000));
      const summary = await summaryP;
      assertEquals([summary.reason, summary.answered], ["ended_by_gateway", true]);
      const rec = (await gw.app.records.recent(1))[0]!;
      assertEquals(rec.endReason, "no_phone_woke");
      await until(
        "the failure count",
        () => gw.app.metrics.get("push_webhook_failures_total", { event: "ring" }) === 1,
        T(3000),
      );
    } finally {
      await door.close();
      await gw.close();
      await push.close();
    }
  },
);
