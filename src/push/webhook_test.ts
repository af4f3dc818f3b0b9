import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { TIME_SCALE } from "../../tests/helpers/scale.ts";
import { systemClock } from "../clock.ts";
import { EventBus } from "../events/bus.ts";
import { Metrics } from "../metrics.ts";
import { memoryLogger } from "../testing/memory_logger.ts";
import { PushWebhook, signWebhook, WEBHOOK_EVENTS } from "./webhook.ts";

const SECRET = "0123456789abcdef-secret";

interface Received {
  readonly body: Record<string, unknown>;
  readonly at: number;
}

/**
 * A push service on loopback that checks each request as a receiver must: the HMAC over
 * `timestamp.body` with the shared secret, and a timestamp within 60 s of now. `answer` decides
 * the status (or `hang`: never answers).
 */
function receiver(answer: (n: number) => number | "hang" = () => 204) {
  const got: Received[] = [];
  const bad: string[] = [];
  let n = 0;
  const hung: (() => void)[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const raw = await req.text();
    const ts = req.headers.get("x-intercom-timestamp") ?? "";
    const sig = req.headers.get("x-intercom-signature") ?? "";
    if (sig !== `sha256=${await signWebhook(SECRET, ts, raw)}`) bad.push(`signature ${sig}`);
    if (!/^\d+$/.test(ts) || Math.abs(Number(ts) - Date.now() / 1000) > 60) bad.push(`ts ${ts}`);
    if (req.headers.get("content-type") !== "application/json") bad.push("content-type");
    const status = answer(n++);
    if (status === "hang") {
      await new Promise<void>((resolve) => hung.push(resolve));
      return new Response(null, { status: 504 });
    }
    got.push({ body: JSON.parse(raw), at: performance.now() });
    return new Response(null, { status });
  });
  return {
    got,
    bad,
    attempts: () => n,
    url: `http://127.0.0.1:${server.addr.port}/hook`,
    async close() {
      for (const r of hung) r();
      await server.shutdown();
    },
  };
}

function setup(url: string, extra: { timeoutMs?: number; retries?: number } = {}) {
  const logger = memoryLogger();
  const metrics = new Metrics();
  const hook = new PushWebhook({
    url,
    secret: SECRET,
    clock: systemClock,
    logger,
    metrics,
    ringTimeoutMs: 30_000,
    phones: { sleepersOf: () => ({ uids: ["sleepy"], community: "花苑" }) },
    backoffMs: 20,
    timeoutMs: extra.timeoutMs ?? 2000,
    retries: extra.retries ?? 2,
  });
  const bus = new EventBus({ logger, metrics });
  bus.subscribeQueued((e) => hook.onEvent(e), { name: "push_webhook", types: WEBHOOK_EVENTS });
  return { hook, bus, logger, metrics };
}

const started = (callId: string, at: number, wakeBy?: number) => ({
  type: "call_started" as const,
  at,
  callId,
  doorAddress: "M00010100",
  doorIp: "10.0.0.5",
  roomAddress: "Y00010108090",
  roomKey: "00010108090",
  ...(wakeBy === undefined ? {} : { wakeBy }),
});

Deno.test("webhook: ring and ring ended, signed over timestamp.body, with the sleeping phones", async () => {
  const rx = receiver();
  const { hook, bus, metrics } = setup(rx.url);
  try {
    const at = Date.now();
    bus.emit(started("c1", at, at + 20_000));
    bus.emit({
      type: "call_ended",
      at: at + 5,
      callId: "c1",
      roomKey: "00010108090",
      reason: "no_phone_woke",
    });
    // A call_ended for a call never rung is not sent.
    bus.emit({ type: "call_ended", at, callId: "other", roomKey: "1", reason: "no_answer" });
    await bus.drained();
    await hook.idle();
    assertEquals(rx.bad, []);
    assertEquals(rx.got.map((r) => r.body), [
      {
        event: "ring",
        callId: "c1",
        doorAddress: "M00010100",
        roomAddress: "Y00010108090",
        community: "花苑",
        uids: ["sleepy"],
        expiresAt: at + 20_000,
      },
      {
        event: "ring ended",
        callId: "c1",
        doorAddress: "M00010100",
        roomAddress: "Y00010108090",
        outcome: "no_phone_woke",
      },
    ]);
    assertEquals(metrics.get("push_webhook_sent_total"), 2);
    assertEquals(metrics.get("push_webhook_failures_total", { event: "ring" }), 0);
  } finally {
    await hook.close();
    await rx.close();
  }
});

Deno.test("webhook: without a wake window, the ring expires with the ring timeout", async () => {
  const rx = receiver();
  const { hook, bus } = setup(rx.url);
  try {
    bus.emit(started("c2", 1000));
    await bus.drained();
    await hook.idle();
    assertEquals(rx.got[0]?.body.expiresAt, 31_000);
  } finally {
    await hook.close();
    await rx.close();
  }
});

Deno.test("webhook: 500s are retried with backoff, then given up: counted, logged once", async () => {
  const rx = receiver(() => 500);
  const { hook, bus, metrics, logger } = setup(rx.url);
  try {
    bus.emit(started("c3", Date.now()));
    bus.emit(started("c4", Date.now()));
    await bus.drained();
    await hook.idle();
    assertEquals(rx.attempts(), 6, "1 + 2 retries each");
    assertEquals(rx.bad, []);
    assertEquals(metrics.get("push_webhook_failures_total", { event: "ring" }), 2);
    const warns = logger.records.filter((r) => String(r.msg).startsWith("push webhook failed"));
    assertEquals(warns.length, 1, "once a minute");
    assertEquals(warns[0]!.why, "HTTP 500");
    assertEquals(warns[0]!.url, rx.url);
  } finally {
    await hook.close();
    await rx.close();
  }
});

Deno.test("webhook: a 4xx refusal is not retried; a recovering service gets the retry", async () => {
  const refuses = receiver(() => 401);
  const flaky = receiver((n) => n === 0 ? 503 : 200);
  const a = setup(refuses.url);
  const b = setup(flaky.url);
  try {
    a.bus.emit(started("c5", Date.now()));
    b.bus.emit(started("c6", Date.now()));
    await Promise.all([a.bus.drained(), b.bus.drained()]);
    await Promise.all([a.hook.idle(), b.hook.idle()]);
    assertEquals(refuses.attempts(), 1);
    assertEquals(a.metrics.get("push_webhook_failures_total", { event: "ring" }), 1);
    assertEquals(flaky.attempts(), 2);
    assertEquals(b.metrics.get("push_webhook_failures_total", { event: "ring" }), 0);
    assertEquals(b.metrics.get("push_webhook_sent_total"), 1);
  } finally {
    await a.hook.close();
    await b.hook.close();
    await refuses.close();
    await flaky.close();
  }
});

Deno.test("webhook: a service that never answers times out per attempt; the emitter never waits", async () => {
  const rx = receiver(() => "hang");
  const { hook, bus, metrics } = setup(rx.url, { timeoutMs: 100, retries: 1 });
  try {
    const t0 = performance.now();
    bus.emit(started("c7", Date.now()));
    assert(performance.now() - t0 < 50 * TIME_SCALE, "emit returned at once");
    await bus.drained();
    await hook.idle();
    assertEquals(rx.attempts(), 2);
    assertEquals(metrics.get("push_webhook_failures_total", { event: "ring" }), 1);
    assert(performance.now() - t0 >= 200, "two attempts of 100 ms");
  } finally {
    await hook.close();
    await rx.close();
  }
});

Deno.test("webhook: close aborts the deliveries in flight", async () => {
  const rx = receiver(() => "hang");
  const { hook, bus } = setup(rx.url, { timeoutMs: 60_000 });
  try {
    bus.emit(started("c8", Date.now()));
    await bus.drained();
    while (rx.attempts() === 0) await new Promise((r) => setTimeout(r, 5));
    const t0 = performance.now();
    await hook.close();
    assert(performance.now() - t0 < 1000 * TIME_SCALE);
  } finally {
    await rx.close();
  }
});

Deno.test("signWebhook: the documented HMAC-SHA256 of timestamp.body, hex", async () => {
  // echo -n '1700000000.{"a":1}' | openssl dgst -sha256 -hmac 0123456789abcdef-secret
  const sig = await signWebhook(SECRET, 1700000000, '{"a":1}');
  assertEquals(sig, "6948a2dc6985c92d09b9edade5c97dce2ba201452d91a72e4a20d35abe4d3420");
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(SECRET),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["verify"],
  );
  assert(
    await crypto.subtle.verify(
      "HMAC",
      key,
      Uint8Array.fromHex(sig),
      new TextEncoder().encode('1700000000.{"a":1}'),
    ),
  );
});
