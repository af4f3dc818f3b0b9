import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { FakeClock, memoryLogger, nullLogger } from "../testing/mod.ts";
import type { Logger } from "../log.ts";
import { Metrics } from "../metrics.ts";
import { BindingStore } from "../store/bindings.ts";
import { PhoneHub, type PhoneSocket } from "./hub.ts";
import { PhoneService } from "./service.ts";
import { TokenBucketLimiter } from "./limiter.ts";
import type { CallManager } from "../call/manager.ts";

class FakeSocket implements PhoneSocket {
  out: Record<string, unknown>[] = [];
  closedWith: number | undefined;
  send(data: string | Uint8Array): void {
    if (typeof data === "string") this.out.push(JSON.parse(data));
  }
  close(code?: number): void {
    this.closedWith = code;
  }
  last(): Record<string, unknown> {
    return this.out.at(-1)!;
  }
}

const ID = { uid: "359608060142756", roomAddress: "Y00010108090", community: "花苑" };

async function setup(requests: string[] = [], logger: Logger = nullLogger) {
  const kv = await Deno.openKv(":memory:");
  const bindings = new BindingStore(kv);
  const { token } = await bindings.add(ID);
  const clock = new FakeClock();
  const left: string[] = [];
  const metrics = new Metrics();
  const hub = new PhoneHub({
    clock,
    logger: nullLogger,
    metrics,
    heartbeatTimeoutMs: 6000,
    onLeft: (uid, rooms) => left.push(`${uid}:${rooms.join(",")}`),
  });
  const manager = {
    phoneRequest: (uid: string, room: string, order: string) => {
      requests.push(`${uid}:${room}:${order}`);
      return order === "talk"
        ? { ok: true as const, callId: "c1" }
        : { ok: false as const, code: "not_in_call" as const };
    },
    byRoom: () => undefined,
    get: () => undefined,
  } as unknown as Pick<CallManager, "phoneRequest" | "byRoom" | "get">;
  const service = new PhoneService({
    hub,
    manager,
    bindings,
    logger,
    metrics,
    clock,
    mediaPort: 8303,
    limiter: new TokenBucketLimiter(clock, {
      login: { burst: 3, perMinute: 1 },
      unlock: { burst: 2, perMinute: 1 },
    }),
  });
  const connect = (ip = "10.0.1.1") => {
    const socket = new FakeSocket();
    return { socket, session: hub.attach(socket, ip) };
  };
  const close = () => {
    hub.close();
    kv.close();
  };
  return { token, clock, hub, service, connect, left, close, requests, metrics };
}

Deno.test("phone service: login first, bad JSON, wrong token, then login ok with its fields", async () => {
  const t = await setup();
  try {
    const { socket, session } = t.connect();
    await t.service.onText(session, JSON.stringify({ order: "heartbeat", ...ID }));
    assertEquals([socket.last().order, socket.last().code], ["error", "login_required"]);
    await t.service.onText(session, "{not json");
    assertEquals([socket.last().code], ["bad_request"]);
    await t.service.onText(
      session,
      JSON.stringify({ order: "login", ...ID, token: "x".repeat(43) }),
    );
    assertEquals([socket.last().code, socket.closedWith], ["unauthorized", 4001]);

    const b = t.connect();
    await t.service.onText(b.session, JSON.stringify({ order: "login", ...ID, token: t.token }));
    assertEquals(b.socket.last(), {
      order: "login ok",
      ...ID,
      heartbeatInterval: 2,
      mediaPort: 8303,
    });
    assert(t.hub.isOnline(ID.uid, "00010108090"));
    await t.service.onText(b.session, JSON.stringify({ order: "heartbeat", ...ID }));
    assertEquals(b.socket.last().order, "heartbeat ok");
  } finally {
    t.close();
  }
});

Deno.test("phone service: presence ends 6 s after the last message; the phone is disconnected", async () => {
  const t = await setup();
  try {
    const { socket, session } = t.connect();
    await t.service.onText(session, JSON.stringify({ order: "login", ...ID, token: t.token }));
    t.clock.advance(5000);
    await t.service.onText(session, JSON.stringify({ order: "heartbeat", ...ID }));
    t.clock.advance(5000);
    assert(t.hub.roomOnline("00010108090"));
    t.clock.advance(1000);
    assert(!t.hub.roomOnline("00010108090"));
    assertEquals([socket.closedWith, t.left], [4003, [`${ID.uid}:00010108090`]]);
  } finally {
    t.close();
  }
});

Deno.test("phone service: a newer connection of the same uid takes over without leaving the room", async () => {
  const t = await setup();
  try {
    const a = t.connect();
    await t.service.onText(a.session, JSON.stringify({ order: "login", ...ID, token: t.token }));
    const b = t.connect();
    await t.service.onText(b.session, JSON.stringify({ order: "login", ...ID, token: t.token }));
    assertEquals([a.socket.closedWith, t.left], [4002, []]);
    assertEquals(t.hub.sessionOf(ID.uid), b.session);
  } finally {
    t.close();
  }
});

Deno.test("phone service: not_bound for another room, unauthorized for another uid, not_in_call from the manager", async () => {
  const t = await setup();
  try {
    const { socket, session } = t.connect();
    await t.service.onText(session, JSON.stringify({ order: "login", ...ID, token: t.token }));
    const call = { doorAddress: "M00010100" };
    await t.service.onText(
      session,
      JSON.stringify({ order: "unlock", ...ID, ...call, roomAddress: "Y00010108091" }),
    );
    assertEquals([socket.last().code, socket.last().ref], ["not_bound", "unlock"]);
    await t.service.onText(
      session,
      JSON.stringify({ order: "unlock", ...ID, ...call, uid: "someone-else" }),
    );
    assertEquals(socket.last().code, "unauthorized");
    await t.service.onText(session, JSON.stringify({ order: "over", ...ID, ...call }));
    assertEquals([socket.last().code, socket.last().ref], ["not_in_call", "over"]);
    const before = socket.out.length;
    await t.service.onText(session, JSON.stringify({ order: "talk", ...ID, ...call }));
    assertEquals(
      socket.out.length,
      before,
      "an accepted request gets its answer from the call, not an error",
    );
    assertEquals(t.requests, [`${ID.uid}:00010108090:over`, `${ID.uid}:00010108090:talk`]);
  } finally {
    t.close();
  }
});

Deno.test("phone service: logins and unlocks are rate limited", async () => {
  const t = await setup();
  try {
    const codes: unknown[] = [];
    for (let i = 0; i < 4; i++) {
      const { socket, session } = t.connect();
      await t.service.onText(session, JSON.stringify({ order: "login", ...ID, token: "bad" }));
      codes.push(socket.last().code);
    }
    assertEquals(codes, ["unauthorized", "unauthorized", "unauthorized", "rate_limited"]);
    t.clock.advance(60_000);
    const { socket, session } = t.connect();
    await t.service.onText(session, JSON.stringify({ order: "login", ...ID, token: t.token }));
    assertEquals(socket.last().order, "login ok");
    const unlock = JSON.stringify({ order: "unlock", ...ID, doorAddress: "M00010100" });
    for (let i = 0; i < 3; i++) await t.service.onText(session, unlock);
    assertEquals(socket.out.slice(-3).map((m) => m.code), [
      "not_in_call",
      "not_in_call",
      "rate_limited",
    ]);
  } finally {
    t.close();
  }
});

Deno.test("phone service: wrong tokens from other sources never lock a uid out; each source is limited", async () => {
  const t = await setup();
  try {
    const login = (ip: string, token: string, uid = ID.uid) => {
      const { socket, session } = t.connect(ip);
      return Promise.resolve(
        t.service.onText(session, JSON.stringify({ order: "login", ...ID, uid, token })),
      ).then(() => socket.last().code ?? socket.last().order);
    };
    const guesses: unknown[] = [];
    for (const ip of ["10.6.6.1", "10.6.6.2"]) {
      for (let i = 0; i < 4; i++) guesses.push(await login(ip, "bad"));
    }
    // Each source keeps its own (low) guessing rate: burst 3, then refused without a check.
    assertEquals(guesses, [
      ...["unauthorized", "unauthorized", "unauthorized", "rate_limited"],
      ...["unauthorized", "unauthorized", "unauthorized", "rate_limited"],
    ]);
    // The resident, from its own address: in, at once and again (successes do not count).
    for (let i = 0; i < 5; i++) assertEquals(await login("10.0.1.1", t.token), "login ok");
    // A source guessing across uids is limited per source too (per-IP burst 3 here).
    const spray = [];
    for (let i = 0; i < 4; i++) spray.push(await login("10.6.6.3", "bad", `uid-${i}`));
    assertEquals(spray.at(-1), "rate_limited");
    assertEquals(t.metrics.get("phone_logins_total", { result: "unauthorized" }), 9);
  } finally {
    t.close();
  }
});

Deno.test("phone service: bad messages are counted each time, answered 20 a second, logged once", async () => {
  const logger = memoryLogger("debug");
  const t = await setup([], logger);
  try {
    const { socket, session } = t.connect();
    for (let i = 0; i < 30; i++) await t.service.onText(session, "{not json");
    await t.service.onText(session, JSON.stringify({ order: "dance" }));
    assertEquals(socket.out.filter((m) => m.code === "bad_request").length, 20);
    assertEquals(t.metrics.get("phone_errors_total", { code: "bad_request" }), 31);
    assertEquals(t.metrics.get("phone_errors_unanswered_total", { code: "bad_request" }), 11);
    // The budget refills at 20 a second, per connection.
    t.clock.advance(100);
    for (let i = 0; i < 5; i++) await t.service.onText(session, "{not json");
    assertEquals(socket.out.length, 22);
    const other = t.connect();
    await t.service.onText(other.session, "{not json");
    assertEquals(other.socket.out.length, 1);
    const lines = logger.records.filter((r) => String(r.msg).startsWith("bad phone message"));
    assertEquals(lines.length, 3);
  } finally {
    t.close();
  }
});

Deno.test("phone service: WebSocket media is skipped (counted) while 256 KiB wait unsent", async () => {
  const kv = await Deno.openKv(":memory:");
  const bindings = new BindingStore(kv);
  const { token } = await bindings.add(ID);
  const clock = new FakeClock();
  const metrics = new Metrics();
  const hub = new PhoneHub({ clock, logger: nullLogger, metrics, heartbeatTimeoutMs: 6000 });
  let sink: ((bytes: Uint8Array) => void) | undefined;
  const call = { callId: "c1", doorAddress: "M00010100", ringing: [ID.uid], talker: undefined };
  const service = new PhoneService({
    hub,
    manager: {
      phoneRequest: () => ({ ok: true as const, callId: "c1" }),
      byRoom: () => call,
    } as unknown as Pick<CallManager, "phoneRequest" | "byRoom">,
    bindings,
    logger: nullLogger,
    metrics,
    clock,
    mediaPort: 8303,
    media: {
      enableWs: (_c, _u, send) => {
        sink = send;
        return true;
      },
      wsAudio: () => {},
    },
  });
  const sent: Uint8Array[] = [];
  const socket = {
    bufferedAmount: 0,
    send: (d: string | Uint8Array) => void (typeof d !== "string" && sent.push(d)),
    close: () => {},
  };
  try {
    const session = hub.attach(socket, "10.0.1.1");
    await service.onText(session, JSON.stringify({ order: "login", ...ID, token }));
    await service.onText(
      session,
      JSON.stringify({ order: "enable_video", ...ID, doorAddress: "M00010100", transport: "ws" }),
    );
    assert(sink, "media sink registered");
    sink(new Uint8Array(100));
    socket.bufferedAmount = 300 * 1024;
    sink(new Uint8Array(100));
    socket.bufferedAmount = 0;
    sink(new Uint8Array(100));
    assertEquals(sent.length, 2);
    assertEquals(metrics.get("phone_media_dropped_total", { reason: "backpressure" }), 1);
  } finally {
    hub.close();
    kv.close();
  }
});

Deno.test("phone service: a heartbeat is answered at once (no promise), and waits behind a login still being checked", async () => {
  const t = await setup();
  try {
    const { socket, session } = t.connect();
    // The login waits on the binding store; a heartbeat sent right behind it is answered after it.
    const login = t.service.onText(
      session,
      JSON.stringify({ order: "login", ...ID, token: t.token }),
    );
    assert(login instanceof Promise, "a login is checked asynchronously");
    const behind = t.service.onText(session, JSON.stringify({ order: "heartbeat", ...ID }));
    assert(behind instanceof Promise, "a message behind a pending one waits for it");
    assertEquals(socket.out.length, 0);
    await behind;
    assertEquals(socket.out.map((m) => m.order), ["login ok", "heartbeat ok"]);
    // Nothing pending: handled in the call itself, the answer already sent.
    const r = t.service.onText(session, JSON.stringify({ order: "heartbeat", ...ID }));
    assertEquals(r, undefined);
    assertEquals(socket.out.map((m) => m.order), ["login ok", "heartbeat ok", "heartbeat ok"]);
    assertEquals(socket.last(), { order: "heartbeat ok", uid: ID.uid });
    // A bad message is answered at once too, and still counted.
    assertEquals(t.service.onText(session, "{not json"), undefined);
    assertEquals(socket.last().code, "bad_request");
  } finally {
    t.close();
  }
});
