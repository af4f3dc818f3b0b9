// "The door says unavailable": the phone side's decisions are logged at info, once a minute per
// cause, and never with the token: a phone closed for missing heartbeats (uid, rooms, last
// heard) and a refused login with its reason.
import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { FakeClock } from "../testing/mod.ts";
import { memoryLogger, nullLogger } from "../testing/mod.ts";
import { Metrics } from "../metrics.ts";
import { BindingStore } from "../store/bindings.ts";
import type { CallControl } from "../call/ports.ts";
import { PhoneHub, type PhoneSocket } from "./hub.ts";
import { PhoneService } from "./service.ts";
import { TokenBucketLimiter } from "./limiter.ts";

const socket = (): PhoneSocket => ({ send: () => {}, close: () => {} });
const noCalls: Pick<CallControl, "phoneRequest" | "byRoom"> = {
  phoneRequest: () => ({ ok: false, code: "not_in_call" }),
  byRoom: () => undefined,
};

Deno.test("hub: a phone closed for missing heartbeats is logged with uid, rooms and when it was last heard", () => {
  const clock = new FakeClock();
  const logger = memoryLogger("info");
  const hub = new PhoneHub({ clock, logger, metrics: new Metrics(), heartbeatTimeoutMs: 6000 });
  try {
    const s = hub.attach(socket(), "10.0.1.1");
    hub.login(s, "u1", "00010108090", { roomAddress: "Y00010108090", community: "" });
    clock.advance(7000);
    const lines = logger.records.filter((l) => l.msg === "phone closed: no heartbeat");
    assertEquals(lines.map((l) => [l.uid, l.rooms, l.ip, l.timeoutS]), [[
      "u1",
      ["00010108090"],
      "10.0.1.1",
      6,
    ]]);
    assertEquals(lines[0]!.lastHeard, new Date(clock.wallNow() - 7000).toISOString());
    assertEquals(hub.lastHeardIn("00010108090"), clock.wallNow() - 7000);
  } finally {
    hub.close();
  }
});

Deno.test("service: a refused login is logged with its reason (unknown uid, wrong token, not bound, rate limited), never the token", async () => {
  const kv = await Deno.openKv(":memory:");
  const clock = new FakeClock();
  const logger = memoryLogger("info");
  const hub = new PhoneHub({
    clock,
    logger: nullLogger,
    metrics: new Metrics(),
    heartbeatTimeoutMs: 6000,
  });
  try {
    const bindings = new BindingStore(kv);
    const { token } = await bindings.add({ uid: "u1", roomAddress: "Y00010108090", community: "" });
    const service = new PhoneService({
      hub,
      manager: noCalls,
      bindings,
      logger,
      metrics: new Metrics(),
      mediaPort: 8303,
      clock,
      limiter: new TokenBucketLimiter(clock, {
        login: { burst: 4, perMinute: 1 },
        unlock: { burst: 2, perMinute: 1 },
      }),
    });
    const login = async (uid: string, roomAddress: string, tok: string, ip = "10.0.1.1") =>
      await service.onText(
        hub.attach(socket(), ip),
        JSON.stringify({ order: "login", uid, roomAddress, community: "", token: tok }),
      );
    await login("nobody", "Y00010108090", "x".repeat(64), "10.0.1.2");
    await login("u1", "Y00010108090", "y".repeat(64));
    await login("u1", "Y00010108091", token);
    await login("u1", "Y00010108091", token); // same cause again: not logged twice
    await login("u1", "Y00010108090", token); // right: logs in, and does not count
    await login("u1", "Y00010108090", "z".repeat(64)); // the fourth failure of u1 here: allowed
    await login("u1", "Y00010108090", token); // after four failures: rate limited
    const lines = logger.records.filter((l) => l.msg === "phone login refused");
    assertEquals(lines.map((l) => [l.uid, l.roomAddress, l.ip, l.reason]), [
      ["nobody", "Y00010108090", "10.0.1.2", "unknown uid"],
      ["u1", "Y00010108090", "10.0.1.1", "wrong token"],
      ["u1", "Y00010108091", "10.0.1.1", "not bound to that room"],
      ["u1", "Y00010108090", "10.0.1.1", "rate limited"],
    ]);
    assert(!JSON.stringify(logger.records).includes(token), "the token never reaches a log line");
  } finally {
    hub.close();
    kv.close();
  }
});
