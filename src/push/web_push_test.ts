import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { newSubscriber, startPushService } from "../../tests/helpers/push_service.ts";
import { systemClock } from "../clock.ts";
import { Metrics } from "../metrics.ts";
import { memoryLogger } from "../testing/memory_logger.ts";
import { generateVapidKeys, importVapidKeys } from "./vapid.ts";
import {
  MAX_PUSH_IN_FLIGHT,
  type PushTarget,
  RING_ENDED_TTL_S,
  type RingPush,
  type WebPushOptions,
  WebPushSender,
} from "./web_push.ts";

const ROOM_KEY = "00010108090";

async function setup(extra: Partial<WebPushOptions> = {}) {
  const stored = await generateVapidKeys();
  const keys = await importVapidKeys(stored);
  const service = startPushService({
    vapidKey: () => stored.publicKey,
    answer: (id, n) => answers.get(id)?.(n) ?? (undefined as unknown as number),
  });
  const answers = new Map<string, (n: number) => number | undefined>();
  const targets: PushTarget[] = [];
  const removed: string[] = [];
  let reloads = 0;
  const metrics = new Metrics();
  const logger = memoryLogger();
  const sender = new WebPushSender({
    keys,
    subject: "mailto:ops@example.com",
    phones: {
      toWake: () => ({ uids: ["u1", "u2"], community: "花苑", roomAddress: "Y00010108090" }),
    },
    subscriptions: {
      of: (uid) => Promise.resolve(targets.filter((t) => t.uid === uid)),
      removeStored: (t) => {
        removed.push(t.endpoint);
        return Promise.resolve(true);
      },
    },
    clock: systemClock,
    logger,
    metrics,
    ringTimeoutMs: 30_000,
    onRemoved: () => reloads++,
    backoffMs: 20,
    ...extra,
  });
  const unsubscribe = (t: PushTarget) => void targets.splice(targets.indexOf(t), 1);
  const subscribe = async (id: string, uid = "u1") => {
    const sub = await newSubscriber();
    service.add(id, sub);
    const t = { uid, roomKey: ROOM_KEY, endpoint: service.endpoint(id), ...sub };
    targets.push(t);
    return t;
  };
  return {
    sender,
    service,
    answers,
    removed,
    reloads: () => reloads,
    metrics,
    logger,
    subscribe,
    unsubscribe,
    async close() {
      await sender.close();
      await service.close();
    },
  };
}

const started = (wakeBy?: number) => ({
  type: "call_started" as const,
  at: Date.now(),
  callId: "c1",
  doorAddress: "M00010100",
  doorIp: "192.0.2.10",
  roomAddress: "S00010108090",
  roomKey: ROOM_KEY,
  ...(wakeBy ? { wakeBy } : {}),
});

const ring = (expiresAt = Date.now() + 20_000): RingPush => ({
  event: "ring",
  door: "M00010100",
  room: "Y00010108090",
  community: "花苑",
  callId: "c1",
  uid: "u1",
  expiresAt,
});

Deno.test("web push: a call pushes an encrypted, VAPID-signed ring to each sleeping phone", async () => {
  const t = await setup();
  try {
    await t.subscribe("a", "u1");
    await t.subscribe("b", "u2");
    const wakeBy = Date.now() + 20_000;
    await t.sender.onEvent(started(wakeBy));
    await t.sender.idle();
    assertEquals(t.service.problems, []);
    const got = t.service.delivered.sort((x, y) => x.id.localeCompare(y.id));
    assertEquals(got.map((d) => d.message), [
      { ...ring(wakeBy), uid: "u1" },
      { ...ring(wakeBy), uid: "u2" },
    ]);
    const ttl = Number(got[0]!.headers["ttl"]);
    assert(ttl >= 18 && ttl <= 20, `TTL ${ttl}: the seconds until the call stops waiting`);
    assertEquals(got[0]!.claims.sub, "mailto:ops@example.com");
    assertEquals(t.metrics.get("web_push_sent_total", { event: "ring" }), 2);
  } finally {
    await t.close();
  }
});

Deno.test("web push: 410 deletes the subscription; 404 too", async () => {
  const t = await setup();
  try {
    const a = await t.subscribe("a");
    const b = await t.subscribe("b");
    t.service.gone("a");
    assertEquals(await t.sender.send(a, ring()), "gone");
    assertEquals(
      await t.sender.send({ ...b, endpoint: t.service.endpoint("nobody") }, ring()),
      "gone",
    );
    assertEquals(t.removed, [a.endpoint, t.service.endpoint("nobody")]);
    assertEquals([t.reloads(), t.metrics.get("web_push_gone_total", { event: "ring" })], [2, 2]);
    assertEquals(await t.sender.send(b, ring()), "sent");
  } finally {
    await t.close();
  }
});

Deno.test("web push: 5xx and 429 are retried with backoff, other 4xx not", async () => {
  const t = await setup();
  try {
    const a = await t.subscribe("a");
    let n = 0;
    t.answers.set("a", () => (++n <= 2 ? 503 : undefined));
    assertEquals(await t.sender.send(a, ring()), "sent");
    assertEquals(n, 3);
    const b = await t.subscribe("b");
    let m = 0;
    t.answers.set("b", () => (++m, 400));
    assertEquals(await t.sender.send(b, ring()), "http_4xx");
    assertEquals(m, 1);
    const c = await t.subscribe("c");
    let k = 0;
    t.answers.set("c", () => (++k, 429));
    assertEquals(await t.sender.send(c, ring()), "http_4xx");
    assertEquals(k, 3, "the first try and 2 retries");
    const d = await t.subscribe("d");
    t.answers.set("d", () => 500);
    assertEquals(await t.sender.send(d, ring()), "http_5xx");
    assertEquals(
      t.metrics.get("web_push_failures_total", { event: "ring", reason: "http_4xx" }),
      2,
    );
    assertEquals(
      t.metrics.get("web_push_failures_total", { event: "ring", reason: "http_5xx" }),
      1,
    );
    assertEquals(t.removed, []);
    // Logged once a minute per reason, not per push.
    const warned = t.logger.records.filter((r) =>
      String(r.msg ?? r.message).startsWith("web push failed")
    );
    assertEquals(warned.length, 2);
  } finally {
    await t.close();
  }
});

Deno.test("web push: a call no longer waiting is not pushed; a silent service times out", async () => {
  const hung: (() => void)[] = [];
  let calls = 0;
  const t = await setup({
    timeoutMs: 100,
    fetch: (_url, init) => {
      calls++;
      return new Promise((_resolve, reject) => {
        const signal = (init as RequestInit).signal!;
        signal.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError")));
        hung.push(() => reject(new Error("never")));
      });
    },
  });
  try {
    const a = await t.subscribe("a");
    assertEquals(await t.sender.send(a, ring(Date.now() - 1)), "expired");
    assertEquals(calls, 0);
    assertEquals(await t.sender.send(a, ring()), "timeout");
    assertEquals(calls, 1, "a timeout is not retried: the ring is time-critical");
  } finally {
    await t.close();
  }
});

Deno.test("web push: at most MAX_PUSH_IN_FLIGHT at once, the rest wait their turn", async () => {
  let now = 0;
  let peak = 0;
  const t = await setup({
    fetch: async () => {
      now++;
      peak = Math.max(peak, now);
      await new Promise((r) => setTimeout(r, 30));
      now--;
      return new Response(null, { status: 201 });
    },
  });
  try {
    const a = await t.subscribe("a");
    const all = await Promise.all(
      Array.from({ length: MAX_PUSH_IN_FLIGHT * 3 }, () => t.sender.send(a, ring())),
    );
    assert(all.every((r) => r === "sent"), JSON.stringify(all));
    // Without the bound all 48 would be in flight at once (each takes 30 ms).
    assert(peak <= MAX_PUSH_IN_FLIGHT && peak > 1, `peak ${peak}`);
  } finally {
    await t.close();
  }
});

const talked = { type: "call_talk" as const, at: Date.now(), callId: "c1", uid: "u1" };
const ended = (reason: "no_phone_woke" | "phone_hung_up" | "door_hung_up", at = Date.now()) => ({
  type: "call_ended" as const,
  at,
  callId: "c1",
  roomKey: ROOM_KEY,
  reason,
});

Deno.test("web push: the end of a pushed call pushes `ring ended` (missed) to the subscriptions rung", async () => {
  const t = await setup();
  try {
    await t.subscribe("a", "u1");
    await t.subscribe("b", "u2");
    await t.sender.onEvent(started(Date.now() + 20_000));
    await t.sender.idle();
    const endedAt = Date.now();
    await t.sender.onEvent(ended("no_phone_woke", endedAt));
    // A call never rung (no subscription pushed) gets no `ring ended`.
    await t.sender.onEvent({ ...ended("phone_hung_up"), callId: "other" });
    await t.sender.idle();
    assertEquals(t.service.problems, []);
    const after = t.service.delivered.filter((d) => d.message.event === "ring ended")
      .sort((x, y) => x.id.localeCompare(y.id));
    const want = {
      event: "ring ended",
      callId: "c1",
      outcome: "no_phone_woke",
      missed: true,
      door: "M00010100",
      room: "Y00010108090",
      community: "花苑",
      endedAt,
    };
    assertEquals(after.map((d) => [d.id, d.message]), [
      ["a", { ...want, uid: "u1" }],
      ["b", { ...want, uid: "u2" }],
    ]);
    const ttl = Number(after[0]!.headers["ttl"]);
    assert(ttl > RING_ENDED_TTL_S - 5 && ttl <= RING_ENDED_TTL_S, `TTL ${ttl}`);
    assertEquals(t.metrics.get("web_push_sent_total", { event: "ring ended" }), 2);
    assertEquals(t.metrics.get("web_push_sent_total", { event: "ring" }), 2);
  } finally {
    await t.close();
  }
});

Deno.test("web push: `ring ended` after a talk is not missed; none to a subscription gone or deleted meanwhile", async () => {
  const t = await setup();
  try {
    await t.subscribe("a", "u1");
    const b = await t.subscribe("b", "u1");
    await t.subscribe("c", "u2");
    t.service.gone("c");
    await t.sender.onEvent(started(Date.now() + 20_000));
    await t.sender.idle();
    assertEquals(t.removed, [t.service.endpoint("c")], "410 to the ring: deleted");
    t.unsubscribe(b); // the phone unsubscribed b during the call
    await t.sender.onEvent(talked);
    await t.sender.onEvent(ended("phone_hung_up"));
    await t.sender.idle();
    const after = t.service.delivered.filter((d) => d.message.event === "ring ended");
    assertEquals(after.map((d) => [d.id, d.message.outcome, d.message.missed]), [
      ["a", "phone_hung_up", false],
    ]);
    assertEquals(t.service.attempts(), 4, "3 rings, 1 ring ended");
  } finally {
    await t.close();
  }
});

Deno.test("web push: a ring still retrying when the call ends is not retried; nothing to withdraw", async () => {
  const t = await setup({ backoffMs: 300 });
  try {
    await t.subscribe("a", "u1");
    let n = 0;
    // The ring's first attempt is refused 503 (retried after 300 ms); the call ends meanwhile.
    t.answers.set("a", () => (++n === 1 ? 503 : undefined));
    await t.sender.onEvent(started(Date.now() + 20_000));
    await new Promise((r) => setTimeout(r, 100));
    await t.sender.onEvent(ended("door_hung_up"));
    await t.sender.idle();
    assertEquals(
      t.service.delivered,
      [],
      "the ring not retried after the end: nothing to withdraw",
    );
    assertEquals(n, 1);
    assertEquals(
      t.metrics.get("web_push_failures_total", { event: "ring", reason: "http_5xx" }),
      1,
    );
  } finally {
    await t.close();
  }
});

Deno.test("web push: a ring in flight when the call ends: `ring ended` follows its acceptance", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  const seen: string[] = [];
  const t = await setup({
    fetch: async (url, init) => {
      const i = init as RequestInit;
      const first = seen.length === 0;
      seen.push(String(url));
      if (first) await gate; // the push service is slow to accept the ring
      return await globalThis.fetch(url, i);
    },
  });
  try {
    await t.subscribe("a", "u1");
    await t.sender.onEvent(started(Date.now() + 20_000));
    while (!seen.length) await new Promise((r) => setTimeout(r, 5));
    await t.sender.onEvent(ended("door_hung_up"));
    await new Promise((r) => setTimeout(r, 50));
    assertEquals(seen.length, 1, "ring ended waits for the ring's answer");
    release();
    await t.sender.idle();
    assertEquals(t.service.delivered.map((d) => [d.message.event, d.message.missed]), [
      ["ring", undefined],
      ["ring ended", true],
    ]);
  } finally {
    await t.close();
  }
});
