/** Do-not-disturb outlives the connection: a sleeping phone in DND is not to be woken by push. */

import { assertEquals } from "../../tests/helpers/assert.ts";
import { FakeClock, nullLogger } from "../testing/mod.ts";
import { Metrics } from "../metrics.ts";
import { PhoneHub, type PhoneSocket, type SessionRoom } from "./hub.ts";

const socket: PhoneSocket = { send: () => {}, close: () => {} };
const ROOM = "00010108090";
const room: SessionRoom = { roomAddress: "Y00010108090", community: "" };

Deno.test("hub: DND set while online still holds once the phone is offline, until it expires", () => {
  const clock = new FakeClock();
  const hub = new PhoneHub({
    clock,
    logger: nullLogger,
    metrics: new Metrics(),
    heartbeatTimeoutMs: 6000,
  });
  try {
    const a = hub.attach(socket);
    hub.login(a, "a", ROOM, room);
    const b = hub.attach(socket);
    hub.login(b, "b", ROOM, room);
    hub.setDnd(a, ROOM, clock.wallNow() + 60_000);
    assertEquals([hub.inDnd("a", ROOM), hub.inDnd("b", ROOM)], [true, false]);
    hub.detach(a);
    hub.detach(b);
    assertEquals([hub.inDnd("a", ROOM), hub.inDnd("b", ROOM)], [true, false]);
    // Back online without DND and offline again: no stale DND.
    const a2 = hub.attach(socket);
    hub.login(a2, "a", ROOM, room);
    hub.setDnd(a2, ROOM, 0);
    hub.detach(a2);
    assertEquals(hub.inDnd("a", ROOM), false);
    const a3 = hub.attach(socket);
    hub.login(a3, "a", ROOM, room);
    hub.setDnd(a3, ROOM, clock.wallNow() + 10_000);
    hub.detach(a3);
    clock.advance(10_001);
    assertEquals(hub.inDnd("a", ROOM), false, "expired");
  } finally {
    hub.close();
  }
});
