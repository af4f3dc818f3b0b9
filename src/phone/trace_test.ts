import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { FakeClock, nullLogger } from "../testing/mod.ts";
import { Metrics } from "../metrics.ts";
import { EventBus } from "../events/bus.ts";
import type { EventOf } from "../events/types.ts";
import { BindingStore } from "../store/bindings.ts";
import { PhoneHub, type PhoneSocket } from "./hub.ts";
import { PhoneService } from "./service.ts";
import { describeOrder, describeText } from "./trace.ts";
import type { CallManager } from "../call/manager.ts";

Deno.test("phone trace: one line per order with its addresses, never a token or media key", () => {
  assertEquals(
    describeOrder({
      order: "call",
      doorAddress: "M00010100",
      roomAddress: "Y00010108090",
      uid: "u1",
      callId: "c-1",
      mediaKey: "secret-key",
    }),
    "call uid=u1 room=Y00010108090 door=M00010100 call=c-1",
  );
  const login = describeText(JSON.stringify({ order: "login", uid: "u1", token: "T0KEN" }));
  assertEquals(login, "login uid=u1");
  assertEquals(describeText("{not json"), "? not JSON");
  assertEquals(describeOrder([1]), "? not a JSON object");
  assert(describeOrder({ order: "error", code: "busy\nx" }).endsWith("code=busy x"));
});

class Socket implements PhoneSocket {
  send(): void {}
  close(): void {}
}

Deno.test("phone trace: emitted in both directions only while someone listens", async () => {
  const kv = await Deno.openKv(":memory:");
  const clock = new FakeClock();
  const metrics = new Metrics();
  const events = new EventBus({ logger: nullLogger, metrics });
  const hub = new PhoneHub({
    clock,
    logger: nullLogger,
    metrics,
    heartbeatTimeoutMs: 6000,
    events,
  });
  const service = new PhoneService({
    hub,
    manager: {
      phoneRequest: () => ({ ok: false, code: "not_in_call" }),
      byRoom: () => undefined,
    } as unknown as Pick<CallManager, "phoneRequest" | "byRoom">,
    bindings: new BindingStore(kv),
    logger: nullLogger,
    metrics,
    mediaPort: 8303,
    events,
    clock,
  });
  try {
    const s = hub.attach(new Socket(), "10.0.1.1");
    await service.onText(s, JSON.stringify({ order: "heartbeat", uid: "u1" }));
    assertEquals(events.wants("phone_trace"), false);
    const seen: EventOf<"phone_trace">[] = [];
    const stop = events.subscribe((e) => seen.push(e), { name: "t", types: ["phone_trace"] });
    await service.onText(s, JSON.stringify({ order: "heartbeat", uid: "u1" }));
    stop();
    await service.onText(s, JSON.stringify({ order: "heartbeat", uid: "u1" }));
    assertEquals(seen.map((e) => [e.direction, e.peer, e.summary]), [
      ["in", "10.0.1.1", "heartbeat uid=u1"],
      ["out", "10.0.1.1", "error code=login_required ref=heartbeat"],
    ]);
  } finally {
    hub.close();
    kv.close();
  }
});
