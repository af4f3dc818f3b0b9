/** `Presence` against a fake link (no NATS): a gateway that falls silent is reported gone. */

import { assertEquals } from "../../tests/helpers/assert.ts";
import { FakeClock } from "../testing/fake_clock.ts";
import type { ClusterLink } from "./link.ts";
import { ANNOUNCE_MS, EXPIRE_MS, Presence } from "./presence.ts";
import { FakeSub } from "./fake_sub.ts";

Deno.test("presence: a gateway silent for EXPIRE_MS is gone (its calls end), once", async () => {
  const sub = new FakeSub();
  const link = {
    gatewayId: "gw1",
    leafUp: true,
    hubUp: true,
    nc: { publish() {}, subscribe: () => sub },
    onChange: () => () => {},
  } as unknown as ClusterLink;
  const clock = new FakeClock();
  const gone: string[] = [];
  const left: string[] = [];
  const noop = () => {};
  const p = new Presence({
    link,
    local: () => new Map(),
    clock,
    logger: { info: noop, warn: noop, debug: noop, error: noop } as never,
    onLeft: (uid) => left.push(uid),
    onGone: (gw) => gone.push(gw),
  });
  p.start();
  try {
    void sub.deliver({ gateway: "gw2", rooms: { "00010108090": ["p1"] } });
    void sub.deliver({ gateway: "gw3", rooms: {} });
    await new Promise((r) => setTimeout(r, 0));
    assertEquals(p.online("00010108090"), ["p1"]);
    clock.advance(ANNOUNCE_MS);
    void sub.deliver({ gateway: "gw3", rooms: {} }); // gw3 keeps announcing
    await new Promise((r) => setTimeout(r, 0));
    clock.advance(EXPIRE_MS);
    assertEquals(gone, ["gw2"]);
    assertEquals(left, ["p1"]);
    clock.advance(EXPIRE_MS);
    assertEquals(gone, ["gw2", "gw3"]);
  } finally {
    await p.stop();
  }
});
