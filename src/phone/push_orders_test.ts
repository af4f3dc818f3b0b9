/**
 * `push subscribe` / `push unsubscribe` (phone-protocol.md #12, #13) in the phone service: the
 * VAPID key in `login ok`, the registry called with the session's token id, `push ok`, and the
 * errors (not logged in for the room, refused by the registry, rate limited).
 */

import { assertEquals } from "../../tests/helpers/assert.ts";
import { FakeClock, nullLogger } from "../testing/mod.ts";
import { Metrics } from "../metrics.ts";
import { BindingStore } from "../store/bindings.ts";
import { PhoneHub, type PhoneSocket } from "./hub.ts";
import { PhoneService, PUSH_ORDER_RATE_PER_MIN } from "./service.ts";
import type { PushRegistry } from "./ports.ts";
import type { CallManager } from "../call/manager.ts";

class FakeSocket implements PhoneSocket {
  out: Record<string, unknown>[] = [];
  send(data: string | Uint8Array): void {
    if (typeof data === "string") this.out.push(JSON.parse(data));
  }
  close(): void {}
  last(): Record<string, unknown> {
    return this.out.at(-1)!;
  }
}

const ID = { uid: "359608060142756", roomAddress: "Y00010108090", community: "花苑" };
const SUB = {
  endpoint: "https://push.example.net/x",
  p256dh: "B".repeat(87),
  auth: "A".repeat(22),
};

Deno.test("push orders: login ok carries the VAPID key; subscribe reaches the registry; push ok", async () => {
  const kv = await Deno.openKv(":memory:");
  const bindings = new BindingStore(kv);
  const { token } = await bindings.add(ID);
  const tokenId = await bindings.tokenIdOf(ID.uid, ID.roomAddress);
  const clock = new FakeClock();
  const metrics = new Metrics();
  const hub = new PhoneHub({ clock, logger: nullLogger, metrics, heartbeatTimeoutMs: 6000 });
  const calls: unknown[][] = [];
  let refuse = false;
  const push: PushRegistry = {
    publicKey: "BKEY",
    subscribe: (...args) => {
      calls.push(args);
      return Promise.resolve(
        refuse
          ? { ok: false, code: "bad_request", message: "endpoint must be an https URL" }
          : { ok: true, count: 1 },
      );
    },
    unsubscribe: (...args) => {
      calls.push(["off", ...args]);
      return Promise.resolve(0);
    },
  };
  const service = new PhoneService({
    hub,
    manager: {} as unknown as Pick<CallManager, "phoneRequest" | "byRoom">,
    bindings,
    logger: nullLogger,
    metrics,
    mediaPort: 8303,
    clock,
    push,
  });
  try {
    const socket = new FakeSocket();
    const s = hub.attach(socket, "10.0.1.1");
    const send = (m: Record<string, unknown>) => service.onText(s, JSON.stringify(m));
    await send({ order: "push subscribe", ...ID, ...SUB });
    assertEquals([socket.last().code, socket.last().ref], ["login_required", "push subscribe"]);
    await send({ order: "login", ...ID, token });
    assertEquals([socket.last().order, socket.last().vapidPublicKey], ["login ok", "BKEY"]);

    await send({ order: "push subscribe", ...ID, ...SUB });
    assertEquals(calls, [[ID.uid, "00010108090", tokenId, SUB]]);
    assertEquals(socket.last(), {
      order: "push ok",
      ...ID,
      endpoint: SUB.endpoint,
      subscribed: true,
      count: 1,
    });
    await send({ order: "push unsubscribe", ...ID, endpoint: SUB.endpoint });
    assertEquals([socket.last().order, socket.last().subscribed], ["push ok", false]);

    // Another room than the connection's, and a refusal by the registry.
    await send({ order: "push subscribe", ...ID, roomAddress: "Y00010108091", ...SUB });
    assertEquals(socket.last().code, "not_bound");
    refuse = true;
    await send({ order: "push subscribe", ...ID, ...SUB });
    assertEquals(socket.last().code, "bad_request");
    assertEquals(
      socket.last().message,
      "Cannot keep the push subscription: endpoint must be an https URL",
    );
    // Bounded: 10 a minute per connection (3 used above: the not_bound one took none).
    refuse = false;
    for (let i = 0; i < PUSH_ORDER_RATE_PER_MIN - 3; i++) {
      await send({ order: "push subscribe", ...ID, ...SUB });
    }
    assertEquals(socket.last().order, "push ok");
    await send({ order: "push subscribe", ...ID, ...SUB });
    assertEquals([socket.last().code, socket.last().ref], ["rate_limited", "push subscribe"]);
    // (Heard from meanwhile: 6 s of silence would be the heartbeat timeout.)
    clock.advance(3_000);
    await send({ order: "heartbeat" });
    clock.advance(3_000);
    await send({ order: "push subscribe", ...ID, ...SUB });
    assertEquals(socket.last().order, "push ok", "one more after 6 s");
  } finally {
    hub.close();
    kv.close();
  }
});
